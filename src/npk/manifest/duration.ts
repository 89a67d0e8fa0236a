/** Manifest durations ("500ms", "5s", "1m30s"): the shared grammar in src/common/units.ts, no bare numbers. */
export { parseDuration, isDuration } from "../../common/units.js";
