/**
 * Where the sluice package is on disk: the nearest directory above this
 * module with a package.json. Works from src/ (under tsx) and from
 * dist/src/ (compiled) alike; the addon, the protos and the compiled CLI
 * are found relative to it.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

/** The package root directory. */
export function packageRoot(): string {
  if (root !== undefined) return root;
  const here = path.dirname(fileURLToPath(import.meta.url));
  let dir = here;
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('sluice: cannot find the package root from ' + here);
    dir = up;
  }
  root = dir;
  return dir;
}
