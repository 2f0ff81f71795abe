/**
 * The compact binary body of `POST /v1/requests/:requestId/results`
 * (`Content-Type: application/vnd.sheepdog.outcomes`): one frame per outcome, back to back,
 * each `jobIndex` (uint32 big-endian), `kind` (uint8: 0 result, 1 error), `length` (uint32
 * big-endian) and `length` payload bytes. No base64, no JSON: a batch of 1,000 small results is
 * a few kB and decodes without copying.
 * @module
 */

/** The media type of an outcome batch in binary frames. */
export const OUTCOME_FRAMES_TYPE = 'application/vnd.sheepdog.outcomes';

/**
 * What a task can report: its result, or its error. A frame's `kind` byte is the position in
 * this list (0 result, 1 error).
 */
export const OUTCOME_KINDS = ['result', 'error'] as const;

/** One kind from {@link OUTCOME_KINDS}. */
export type OutcomeKind = (typeof OUTCOME_KINDS)[number];

/** One outcome in a batch: the task's result payload, or its error's stack as UTF-8 bytes. */
export interface OutcomeFrame {
  /** The task's job index (1..N); a frame holds it as uint32. */
  readonly jobIndex: number;
  /** Whether `payload` is a result or an error. */
  readonly kind: OutcomeKind;
  /** The serialised result, or the error's stack as UTF-8 text. */
  readonly payload: Uint8Array;
}

/** Bytes before each payload: jobIndex (4), kind (1), length (4). */
const HEADER = 9;

/**
 * Encodes outcomes as binary frames, in order.
 *
 * @param outcomes - the batch; each `jobIndex` and payload length must fit in a uint32
 * @returns one buffer holding every frame
 */
export function encodeOutcomeFrames(outcomes: readonly OutcomeFrame[]): Uint8Array {
  let size = 0;
  for (const o of outcomes) size += HEADER + o.payload.byteLength;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  let at = 0;
  for (const o of outcomes) {
    view.setUint32(at, o.jobIndex);
    view.setUint8(at + 4, o.kind === 'result' ? 0 : 1);
    view.setUint32(at + 5, o.payload.byteLength);
    out.set(o.payload, at + HEADER);
    at += HEADER + o.payload.byteLength;
  }
  return out;
}

/**
 * Decodes binary frames; payloads are views into `body`, not copies.
 *
 * @param body - the bytes {@link encodeOutcomeFrames} made (an empty body is an empty batch)
 * @returns the outcomes, or a string saying what is malformed
 */
export function decodeOutcomeFrames(body: Uint8Array): OutcomeFrame[] | string {
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const outcomes: OutcomeFrame[] = [];
  let at = 0;
  while (at < body.byteLength) {
    if (at + HEADER > body.byteLength) return `frame ${outcomes.length + 1} is cut short`;
    const jobIndex = view.getUint32(at);
    const kind = view.getUint8(at + 4);
    const length = view.getUint32(at + 5);
    if (kind > 1)
      return `frame ${outcomes.length + 1} has kind ${kind}; use 0 (result) or 1 (error)`;
    const end = at + HEADER + length;
    if (end > body.byteLength) return `frame ${outcomes.length + 1} is cut short`;
    outcomes.push({
      jobIndex,
      kind: kind === 0 ? 'result' : 'error',
      payload: body.subarray(at + HEADER, end),
    });
    at = end;
  }
  return outcomes;
}
