import { describe, expect, it } from 'vitest';
import { addedMigrations, irreversibleReason } from '../../../tasks/plan/migrations.ts';

describe('addedMigrations', () => {
  it('takes the migration files a diff adds (or renames into place), per app, and nothing else', () => {
    const nameStatus = [
      'A\tpages/migrations/0002_page_slug.py',
      'A\tpages/migrations/__init__.py',
      'M\tpages/migrations/0001_initial.py',
      'R100\tshop/old/0003_x.py\tshop/orders/migrations/0003_order_paid.py',
      'A\tdocs/migrations/notes.md',
      'D\tblog/migrations/0004_gone.py',
      'A\tpages/views.py',
    ].join('\n');
    expect(addedMigrations(nameStatus)).toEqual([
      { app: 'pages', name: '0002_page_slug', path: 'pages/migrations/0002_page_slug.py' },
      { app: 'orders', name: '0003_order_paid', path: 'shop/orders/migrations/0003_order_paid.py' },
    ]);
    expect(addedMigrations('')).toEqual([]);
  });
});

describe('irreversibleReason', () => {
  it('flags RunPython without reverse_code and RunSQL without reverse_sql', () => {
    expect(irreversibleReason('operations = [migrations.RunPython(fill_slugs)]')).toBe('RunPython without reverse_code');
    expect(irreversibleReason('migrations.RunPython(code=fill, reverse_code=None)')).toBe('RunPython without reverse_code');
    expect(irreversibleReason('migrations.RunSQL("UPDATE t SET a = \'(\'")')).toBe('RunSQL without reverse_sql');
  });

  it('accepts a reverse given by position or by name, and plain schema operations', () => {
    expect(irreversibleReason('migrations.RunPython(fill, migrations.RunPython.noop)')).toBeUndefined();
    expect(irreversibleReason('migrations.RunPython(fill, reverse_code=unfill, elidable=True)')).toBeUndefined();
    expect(irreversibleReason('migrations.RunSQL(sql=["CREATE INDEX i ON t (a)"], reverse_sql=["DROP INDEX i"])')).toBeUndefined();
    expect(irreversibleReason('migrations.AddField(model_name="page", name="slug", field=models.SlugField())')).toBeUndefined();
  });
});
