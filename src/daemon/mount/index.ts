export { loopMountOptions, mountImage, selinuxEnabled, umount } from "./image.js";
export type { MountHandle, MountImageOptions, MountMethod, MountableNpk } from "./image.js";
export { kernelDmVerityAvailable } from "./dm-verity.js";
export { findMount, loopBackingFile, parseMountInfo } from "./mountinfo.js";
