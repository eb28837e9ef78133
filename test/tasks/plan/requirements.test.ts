import { describe, expect, it } from 'vitest';
import { describeRequirementsDiff, diffRequirements, requirementLines } from '../../../tasks/plan/requirements.ts';

describe('diffRequirements', () => {
  it('names what was added, removed and changed, matching names as pip does (case, -, _ and . alike)', () => {
    const diff = diffRequirements('Django==4.2\nrequests==2.31\nzope.interface==6\n', 'django==5.0\nsentry-sdk[django]>=2 ; python_version >= "3.8"\nZope_Interface==6\n');
    expect(diff).toEqual({
      added: [{ name: 'sentry-sdk', to: 'sentry-sdk[django]>=2 ; python_version >= "3.8"' }],
      removed: [{ name: 'requests', from: 'requests==2.31' }],
      changed: [{ name: 'django', from: 'Django==4.2', to: 'django==5.0' }],
    });
    expect(describeRequirementsDiff(diff)).toBe('+sentry-sdk[django]>=2 ; python_version >= "3.8", -requests==2.31, Django==4.2 -> django==5.0');
  });

  it('ignores comments, blank lines, spacing and order; joins continued lines; compares options as lines', () => {
    const before = '# pinned\nDjango == 4.2  # LTS\n\n-r base.txt\nrequests\\\n==2.31\n';
    const after = 'requests==2.31\n-r base.txt\nDjango==4.2\n';
    expect(requirementLines(before)).toEqual(['Django == 4.2', '-r base.txt', 'requests==2.31']);
    const diff = diffRequirements(before, after);
    expect(diff).toEqual({ added: [], removed: [], changed: [] });
    expect(describeRequirementsDiff(diff)).toBe('only comments, order or spacing differ');
    expect(diffRequirements('-r base.txt\n', '-r prod.txt\n')).toEqual({ added: [{ name: '-r prod.txt', to: '-r prod.txt' }], removed: [{ name: '-r base.txt', from: '-r base.txt' }], changed: [] });
  });
});
