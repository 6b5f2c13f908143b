/** The CLI's one error module: usage errors, exit statuses, and how any thrown value is told to a person. */
/** A command line that cannot be run as written; exits with status 2 and a pointer to --help. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** Exit statuses: 0 success, 1 the work failed, 2 the command line was wrong. */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** One line for a person, and the exit status, for anything a command can throw (never a stack trace). */
export function describeError(e: unknown): { message: string; exitCode: number } {
  if (e instanceof UsageError) return { message: e.message, exitCode: EXIT_USAGE };
  const tagged = e as { _tag?: string; message?: string; reason?: string; backend?: string };
  switch (tagged?._tag) {
    case "TensorFileError":
      return { message: tagged.message ?? "bad tensor file", exitCode: EXIT_FAILURE };
    case "InvalidInput":
      return { message: `invalid input (${tagged.reason}): ${tagged.message}`, exitCode: EXIT_FAILURE };
    case "BackendUnavailable":
      return {
        message: `backend ${tagged.backend} unavailable (${tagged.reason}): ${tagged.message}`,
        exitCode: EXIT_FAILURE,
      };
    case "DeviceError":
      return {
        message: `backend ${tagged.backend} failed (${tagged.reason}): ${tagged.message}`,
        exitCode: EXIT_FAILURE,
      };
    case "NoBackend":
      return { message: tagged.message ?? "no backend can run this call", exitCode: EXIT_FAILURE };
  }
  const code = (e as { code?: string })?.code;
  const msg = e instanceof Error ? e.message : String(e);
  if (
    code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" || code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE" ||
    code === "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL"
  ) {
    return { message: msg, exitCode: EXIT_USAGE };
  }
  return { message: msg, exitCode: EXIT_FAILURE };
}

/** Prints `e` as "sageattn <command>: error: …" on stderr (the stack only with SAGEATTN_DEBUG set) and returns the exit status. */
export function reportError(command: string, e: unknown): number {
  const { message, exitCode } = describeError(e);
  process.stderr.write(`sageattn ${command}: error: ${message}\n`);
  if (exitCode === EXIT_USAGE) process.stderr.write(`Run 'sageattn ${command} --help' for usage.\n`);
  if (process.env.SAGEATTN_DEBUG && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
  return exitCode;
}
