// The wire vocabulary a client program speaks: request types, addresses,
// reply codes, ids and schemas, the admin signature's window, the version.
// Programs built on the client library (dvsctl, the bench) take these names
// from here; the definitions stay in protocol/, shared with the nodes.
export type { AdminSigner } from "../protocol/adminSignature.js";
export { ADMIN_SIGNATURE_WINDOW_MS } from "../protocol/adminSignature.js";
export type { Encoding } from "../protocol/codec.js";
export type { FileListing } from "../protocol/files.js";
export { commitIdSchema, FileStoreError, fileNameSchema } from "../protocol/files.js";
export type {
  ClusterEvent,
  ErrorName,
  NodeId,
  NodeStatus,
  RequestType,
  Role,
  Rply,
} from "../protocol/messages.js";
export {
  ALL,
  actionIdSchema,
  ERRORS,
  errorName,
  isRequestType,
  MUTATING_TYPES,
  NODE_FLAGS,
  nodeIdSchema,
  PARAMS,
  REQUEST_GROUPS,
  REQUEST_TYPES,
  UNICAST_ONLY_TYPES,
} from "../protocol/messages.js";
export { ANY_ENDPOINT, ANY_RQST, PROC_FLAGS } from "../protocol/processes.js";
export { VERSION } from "../protocol/version.js";
