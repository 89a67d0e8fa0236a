// Kernel dm-verity needs device-mapper (/dev/mapper/control) and the dm_verity target. This
// machine (and many test systems) has neither, so Skiff verifies fs.img in userspace before
// mounting (src/npk/verity.ts verifyVerity). This probe lets the daemon report which applies;
// mapping through kernel dm-verity is not implemented yet.
import { access } from "node:fs/promises";

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** True when device-mapper and the dm_verity target (module or built-in, which has parameters) exist. */
export async function kernelDmVerityAvailable(): Promise<boolean> {
  return (await exists("/dev/mapper/control")) && (await exists("/sys/module/dm_verity"));
}
