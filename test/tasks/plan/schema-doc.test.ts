import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { describe, expect, it } from 'vitest';
import { PlanDocumentSchema } from '../../../tasks/plan/schema.ts';

// docs/plan.schema.json is what `deploy plan --json` promises to pipelines; it is
// generated from the zod schema the e2e test validates real output with.
// After changing the schema: DEPLOYFILE_WRITE_DOCS=1 npx vitest run test/tasks/plan/schema-doc.test.ts
const FILE = fileURLToPath(new URL('../../../docs/plan.schema.json', import.meta.url));

describe('docs/plan.schema.json', () => {
  it('is the JSON Schema of the document deploy plan --json prints', () => {
    const generated = `${JSON.stringify({ $id: 'https://deployfile.invalid/plan.schema.json', title: 'deploy plan --json', ...z.toJSONSchema(PlanDocumentSchema) }, null, 2)}\n`;
    if (process.env.DEPLOYFILE_WRITE_DOCS) writeFileSync(FILE, generated);
    expect(readFileSync(FILE, 'utf8'), 'docs/plan.schema.json is out of date: regenerate it (see the comment at the top of this test)').toBe(generated);
  });

  it('documents every field of a site in docs/plan.md', () => {
    const doc = readFileSync(fileURLToPath(new URL('../../../docs/plan.md', import.meta.url)), 'utf8');
    const site = PlanDocumentSchema.shape.sites.element.shape;
    for (const field of Object.keys(site)) expect(doc, `docs/plan.md does not mention ${field}`).toContain(`\`${field}\``);
  });
});
