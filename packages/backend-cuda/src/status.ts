/**
 * Native status codes (sageattn.h's sa_status) → core's tagged errors, in one place. The native message (what was
 * being done, the CUDA runtime's error name and words) travels as the error's message and cause.
 */
import { BackendUnavailable, DeviceError, InvalidInput } from "@sageattn/core";
import { Effect } from "effect";
import type { Native } from "./ffi/symbols.js";

export const Status = {
  Ok: 0,
  InvalidArgument: 1,
  NoDevice: 2,
  OutOfMemory: 3,
  KernelFailed: 4,
  Unsupported: 5,
  WorkspaceTooSmall: 6,
  LimitExceeded: 7,
  DeviceLost: 8,
  Cuda: 9,
} as const;

const names = Object.fromEntries(Object.entries(Status).map(([k, v]) => [v, k])) as Record<number, string>;

/** This thread's last native error message. */
export function lastError(native: Native): string {
  const buf = new Uint8Array(1024);
  native.sa_last_error(buf, buf.length);
  const end = buf.indexOf(0);
  return new TextDecoder().decode(buf.subarray(0, end < 0 ? buf.length : end));
}

export type CudaError = BackendUnavailable | DeviceError | InvalidInput;

/**
 * The tagged error for a failed status. While loading ("load"), anything is a reason the backend is unavailable;
 * during a call, device failures are DeviceErrors and a request this library cannot serve is "Unsupported".
 */
export function toError(native: Native, status: number, what: string, phase: "load" | "call"): CudaError {
  const detail = lastError(native);
  const message = `${what}: ${names[status] ?? `status ${status}`}${detail ? ` — ${detail}` : ""}`;
  const cause = { status, native: detail };
  const device = (reason: DeviceError["reason"]) => new DeviceError({ backend: "cuda", reason, message, cause });
  if (phase === "load") {
    const reason = status === Status.NoDevice
      ? "NoDevice"
      : status === Status.Unsupported
      ? "FeatureMissing"
      : "NoDevice";
    return new BackendUnavailable({ backend: "cuda", reason, message, cause });
  }
  switch (status) {
    case Status.InvalidArgument:
      return new InvalidInput({ reason: "InvalidShape", message });
    case Status.NoDevice:
    case Status.DeviceLost:
      return device("DeviceLost");
    case Status.OutOfMemory:
      return device("OutOfMemory");
    case Status.LimitExceeded:
      return device("LimitExceeded");
    case Status.Unsupported:
      return new BackendUnavailable({ backend: "cuda", reason: "Unsupported", message, cause });
    default:
      return device("KernelFailed");
  }
}

/** Every native status goes through here: success → Effect.void, anything else → its tagged error. */
export function unwrap(
  native: Native,
  status: number,
  what: string,
  phase: "load" | "call" = "call",
): Effect.Effect<void, CudaError> {
  return status === Status.Ok ? Effect.void : Effect.fail(toError(native, status, what, phase));
}
