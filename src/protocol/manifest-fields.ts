/**
 * Northstar 0.9.2's `Manifest` fields (npk/manifest/mod.rs). Its serde denies unknown fields, so
 * these are all a Northstar-dialect client may see in `inspect` (protocol/dialect.ts), and the
 * manifest decoder accepts them before Skiff's own extensions (npk/manifest/decode.ts).
 */
export const NORTHSTAR_MANIFEST_FIELDS = [
  "name",
  "version",
  "console",
  "init",
  "args",
  "env",
  "uid",
  "gid",
  "sched",
  "mounts",
  "autostart",
  "cgroups",
  "network",
  "seccomp",
  "selinux",
  "capabilities",
  "suppl_groups",
  "rlimits",
  "sockets",
  "io",
  "custom",
] as const;
