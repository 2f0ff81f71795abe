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

/** One outcome in a batch: the task's result payload, or its error's stack as UTF-8 bytes. */
export interface OutcomeFrame {
  readonly jobIndex: number;
  readonly kind: 'result' | 'error';
  readonly payload: Uint8Array;
}

const HEADER = 9;

/** Encodes outcomes as binary frames. */
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
 * Decodes binary frames; payloads are views into `body`.
 *
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
