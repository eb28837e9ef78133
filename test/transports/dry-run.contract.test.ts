import { DryRunTransport } from '../../src/transports/dry-run.ts';
import { printerContract } from './contract.ts';

printerContract('DryRunTransport', (target) => new DryRunTransport(target));
