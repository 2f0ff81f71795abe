export { type BuildOptions, buildFunction } from './build.js';
export {
  isSerializeError,
  SERIALIZE_ERROR_CODES,
  SerializeError,
  type SerializeErrorCode,
} from './error.js';
export {
  type AnyFunction,
  decodeFunction,
  encodeFunction,
  type FunctionPayload,
  type ModuleFunction,
  type ModuleFunctionPayload,
  type SourceFunctionPayload,
} from './function.js';
export { decodeNamespace, encodeNamespace, type NamespacePayload } from './namespace.js';
export { decodeValue, encodeArgs, encodeValue } from './value.js';
