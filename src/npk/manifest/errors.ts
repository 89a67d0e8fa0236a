/** One problem found in a manifest. `path` names the field, e.g. `mounts./data.persist`. */
export interface ManifestIssue {
  path: string;
  reason: string;
}

/** Thrown when a manifest cannot be read or breaks a rule. Carries every problem found, not only the first. */
export class ManifestError extends Error {
  readonly errors: readonly ManifestIssue[];

  constructor(errors: readonly ManifestIssue[]) {
    const lines = errors.map((issue) => `  ${issue.path || "<root>"}: ${issue.reason}`);
    super(
      `invalid manifest (${errors.length} problem${errors.length === 1 ? "" : "s"}):\n${lines.join("\n")}`,
    );
    this.name = "ManifestError";
    this.errors = errors;
  }
}

/** Collects issues while a manifest is decoded or validated. */
export class IssueList {
  readonly issues: ManifestIssue[] = [];

  add(path: string, reason: string): void {
    this.issues.push({ path, reason });
  }

  get empty(): boolean {
    return this.issues.length === 0;
  }

  throwIfAny(): void {
    if (!this.empty) throw new ManifestError(this.issues);
  }
}

/** Joins a field path: `join("mounts", "/data")` is `mounts./data`. */
export function joinPath(parent: string, key: string | number): string {
  return parent === "" ? String(key) : `${parent}.${key}`;
}
