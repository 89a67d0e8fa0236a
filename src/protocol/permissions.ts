/**
 * Console permissions. The first fifteen are Northstar's (NORTHSTAR_PERMISSIONS); every request Skiff adds gets a
 * permission of its own, appended here. A listener or a container console holds a set of them;
 * "full" in configuration means all.
 */
/** Northstar 0.9.2's fifteen (npk/manifest/console.rs): what a Northstar-dialect client may see. */
export const NORTHSTAR_PERMISSIONS = [
  "ident",
  "inspect",
  "install",
  "kill",
  "list",
  "notifications",
  "mount",
  "repositories",
  "shutdown",
  "start",
  "start_command",
  "token_create",
  "token_verification",
  "umount",
  "uninstall",
] as const;

export const PERMISSIONS = [
  ...NORTHSTAR_PERMISSIONS,
  // Skiff's additions.
  "stop",
  "logs",
  "pause",
  "resume",
  "suspend",
  "wake_lock",
  "wake_source",
  "proxy",
  "power",
  "prepare",
  "health",
  "checkpoint",
  "restore",
  "exec",
  "statistics",
] as const;

export type Permission = (typeof PERMISSIONS)[number];

export function isPermission(value: string): value is Permission {
  return (PERMISSIONS as readonly string[]).includes(value);
}

export type PermissionSet = ReadonlySet<Permission>;

export const FULL_PERMISSIONS: PermissionSet = new Set(PERMISSIONS);
