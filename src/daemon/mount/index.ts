export { loopMountOptions, mountImage, selinuxEnabled, umount } from "./image.js";
export type { MountHandle, MountImageOptions, MountMethod, MountableNpk } from "./image.js";
export {
  closeVerityDevice,
  dmNodeOf,
  isVerityMountSource,
  releaseStrayLoops,
  removeStaleVerityDevices,
  listDmDevices,
  probeKernelVerity,
  verityDeviceName,
  verityDeviceNumbers,
  verityNamePrefix,
  watchVerityCorruption,
} from "./dm-verity.js";
export type { KernelVerityProbe, VerityCorruption, VerityDevice, VerityProtection } from "./dm-verity.js";
export { findMount, loopBackingFile, parseMountInfo } from "./mountinfo.js";
