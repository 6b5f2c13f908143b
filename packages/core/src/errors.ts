import { Data } from "effect";

/** Why a backend could not be used. */
export type UnavailableReason =
  | "NotInstalled" // its package is not installed
  | "LibraryNotFound" // its native library is missing
  | "NoDevice" // no GPU, no adapter, no driver
  | "FeatureMissing" // the runtime or device lacks something the backend needs
  | "Unsupported" // it cannot serve the options of this call
  | "Refused" // it runs, but on something known to compute wrong (e.g. Dawn's null backend)
  | "Software"; // it runs on a software (CPU-emulated) device: ranked below cpu-simd, still selectable by name

/** A backend cannot run here; `cause` keeps what the runtime said. */
export class BackendUnavailable extends Data.TaggedError("BackendUnavailable")<{
  readonly backend: string;
  readonly reason: UnavailableReason;
  readonly message: string;
  readonly cause?: unknown;
}> {}

/** What was wrong with the inputs or options of a call. */
export type InvalidInputReason =
  | "InvalidShape"
  | "DTypeMismatch"
  | "LayoutMismatch"
  | "InvalidHeadDim"
  | "EmptyTensor"
  | "NonFinite"
  | "OutOfRange" // finite, but would overflow f32 logits or the f16 P·V step
  | "InvalidOption"
  | "InvalidMask"
  | "InvalidVarlen";

/** The call's inputs break the contract; nothing ran. */
export class InvalidInput extends Data.TaggedError("InvalidInput")<{
  readonly reason: InvalidInputReason;
  readonly message: string;
}> {}

/** Why a device operation failed. */
export type DeviceErrorReason = "LimitExceeded" | "OutOfMemory" | "DeviceLost" | "KernelFailed" | "Disposed";

/** The backend accepted the call but its device failed it; `cause` keeps the native message. */
export class DeviceError extends Data.TaggedError("DeviceError")<{
  readonly backend: string;
  readonly reason: DeviceErrorReason;
  readonly message: string;
  readonly cause?: unknown;
}> {}

/** No backend could serve the call; `rejected` says why each one was passed over. */
export class NoBackend extends Data.TaggedError("NoBackend")<{
  readonly message: string;
  readonly rejected: readonly BackendUnavailable[];
}> {}

export type SageAttnError = BackendUnavailable | InvalidInput | DeviceError | NoBackend;

export const invalid = (reason: InvalidInputReason, message: string) => new InvalidInput({ reason, message });

/** A host-side failure (an array the runtime would not allocate: RangeError) as a DeviceError rather than a throw. */
export const hostAllocationFailed = (backend: string, e: unknown) =>
  new DeviceError({
    backend,
    reason: e instanceof RangeError ? "OutOfMemory" : "KernelFailed",
    message: e instanceof RangeError
      ? `the host could not allocate the call's arrays: ${e.message}`
      : `${backend} failed: ${String(e)}`,
    cause: e,
  });
