/**
 * The CRI v1 wire: the vendored `api.proto` of k8s.io/cri-api (vendor/cri-api/README.md says
 * which tag and that it is unmodified), loaded at run time by @grpc/proto-loader. The server and
 * the tests' client both load it through here, with the same options, so they cannot disagree.
 *
 * Options: field names stay as the proto spells them (`runtime_api_version`), enums travel as
 * their names, 64-bit integers as decimal strings (a nanosecond timestamp does not fit a double;
 * protobufjs encodes a string or a number given for one), and absent fields read as their
 * defaults, as a Go client sees them.
 */
import { fileURLToPath } from "node:url";
import { loadPackageDefinition, type GrpcObject, type ServiceClientConstructor } from "@grpc/grpc-js";
import { loadSync, type Options } from "@grpc/proto-loader";

/** This module runs as dist/src/cri/proto.js, three levels below the package root. */
export const CRI_PROTO_PATH = fileURLToPath(new URL("../../../vendor/cri-api/api.proto", import.meta.url));

const LOADER_OPTIONS: Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

export interface CriServices {
  /** `runtime.v1.RuntimeService`: a client constructor whose `service` is the definition. */
  RuntimeService: ServiceClientConstructor;
  /** `runtime.v1.ImageService`. */
  ImageService: ServiceClientConstructor;
}

/** Loads the proto (a few milliseconds, once per server or client). */
export function loadCriServices(): CriServices {
  const root = loadPackageDefinition(loadSync(CRI_PROTO_PATH, LOADER_OPTIONS));
  const v1 = (root.runtime as GrpcObject).v1 as GrpcObject;
  return {
    RuntimeService: v1.RuntimeService as ServiceClientConstructor,
    ImageService: v1.ImageService as ServiceClientConstructor,
  };
}
