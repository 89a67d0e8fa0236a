#!/usr/bin/env node
/**
 * Folder-level import cycles in src/ (issue 13): every relative import specifier of
 * src/**\/*.ts, value and type imports alike, becomes an edge between the units of its two
 * files. Units are the rooms of the architecture: each direct child folder of src/ and, inside
 * src/daemon, each of its child folders (src/daemon/state, src/daemon/events, ...); a file
 * directly in src/ or src/daemon (runtime.ts, tokens.ts, ...) is a unit of its own. Any cycle
 * among units is reported with one file pair per edge, and the script exits 1.
 *
 * Usage: node scripts/check-cycles.mjs [--graph]
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";

const root = resolve(dirname(new URL(import.meta.url).pathname), "..");
const src = join(root, "src");

function* tsFiles(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* tsFiles(path);
    else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts")) yield path;
  }
}

/** The architectural unit a file belongs to. */
function unitOf(file) {
  const parts = relative(root, file).split(sep);
  if (parts[1] === "daemon") return parts.slice(0, 3).join("/").replace(/\.ts$/, "");
  return parts.slice(0, 2).join("/").replace(/\.ts$/, "");
}

const specifier =
  /(?:^|[\s;])(?:import|export)\s[^;]*?from\s+["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/gs;

/** unit -> unit -> first edge [from file, to file] */
const edges = new Map();
for (const file of tsFiles(src)) {
  const text = readFileSync(file, "utf8");
  for (const m of text.matchAll(specifier)) {
    const spec = m[1] ?? m[2];
    if (!spec.startsWith(".")) continue;
    const target = resolve(dirname(file), spec.replace(/\.js$/, ".ts"));
    const from = unitOf(file);
    const to = unitOf(target);
    if (from === to) continue;
    if (!edges.has(from)) edges.set(from, new Map());
    const out = edges.get(from);
    if (!out.has(to)) out.set(to, [relative(root, file), relative(root, target)]);
  }
}

if (process.argv.includes("--graph")) {
  for (const [from, out] of [...edges].sort()) console.log(`${from} -> ${[...out.keys()].sort().join(", ")}`);
}

// Tarjan's strongly connected components: every component with more than one unit is a cycle.
let index = 0;
const stack = [];
const info = new Map();
const components = [];
function connect(v) {
  info.set(v, { index, low: index, onStack: true });
  index++;
  stack.push(v);
  for (const w of edges.get(v)?.keys() ?? []) {
    if (!info.has(w)) {
      connect(w);
      info.get(v).low = Math.min(info.get(v).low, info.get(w).low);
    } else if (info.get(w).onStack) info.get(v).low = Math.min(info.get(v).low, info.get(w).index);
  }
  if (info.get(v).low === info.get(v).index) {
    const component = [];
    let w;
    do {
      w = stack.pop();
      info.get(w).onStack = false;
      component.push(w);
    } while (w !== v);
    if (component.length > 1) components.push(component.sort());
  }
}
for (const v of [...edges.keys()].sort()) if (!info.has(v)) connect(v);

if (components.length === 0) {
  console.log(`no folder-level import cycles (${edges.size} folders with imports)`);
  process.exit(0);
}
for (const component of components) {
  console.error(`cycle among: ${component.join(", ")}`);
  const members = new Set(component);
  for (const from of component)
    for (const [to, [a, b]] of edges.get(from) ?? [])
      if (members.has(to)) console.error(`  ${from} -> ${to}: ${a} imports ${b}`);
}
process.exit(1);
