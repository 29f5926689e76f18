import { readFileSync } from 'node:fs';
import { cpus, platform, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from './paths.js';

/** Where and when a run happened. */
export interface MachineInfo {
  date: string;
  cpuModel: string;
  cpuCount: number;
  totalMemoryMB: number;
  platform: string;
  node: string;
  v8: string;
  isolatedVm: string;
}

/**
 * Describes this machine and runtime for results.json.
 *
 * @example
 * machineInfo().node; // 'v20.20.0'
 */
export function machineInfo(): MachineInfo {
  const list = cpus();
  return {
    date: new Date().toISOString(),
    cpuModel: list[0]?.model ?? 'unknown',
    cpuCount: list.length,
    totalMemoryMB: Math.round(totalmem() / 1024 / 1024),
    platform: `${platform()} ${release()}`,
    node: process.version,
    v8: process.versions.v8,
    isolatedVm: packageVersion('isolated-vm'),
  };
}

function packageVersion(name: string): string {
  try {
    return JSON.parse(readFileSync(join(packageRoot(), 'node_modules', name, 'package.json'), 'utf8')).version;
  } catch {
    return 'unknown';
  }
}
