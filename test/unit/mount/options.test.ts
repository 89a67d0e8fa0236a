import { test } from "node:test";
import assert from "node:assert/strict";
import { loopMountOptions } from "../../../src/daemon/mount/image.js";

const npk = { path: "/x.npk", fsImage: { type: "squashfs", offset: 4096, size: 8192 }, verity: undefined };

void test("the image mount carries selinux.mount_context as context= when given", () => {
  const image = npk as unknown as Parameters<typeof loopMountOptions>[0];
  assert.equal(loopMountOptions(image), "ro,nosuid,nodev,loop,offset=4096,sizelimit=8192");
  assert.equal(
    loopMountOptions(image, "system_u:object_r:container_file_t:s0"),
    "ro,nosuid,nodev,loop,offset=4096,sizelimit=8192,context=system_u:object_r:container_file_t:s0",
  );
});
