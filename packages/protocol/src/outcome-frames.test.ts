import { describe, expect, it } from 'vitest';
import { decodeOutcomeFrames, encodeOutcomeFrames, type OutcomeFrame } from './outcome-frames.js';

const enc = new TextEncoder();
const bytes = (text: string): Uint8Array => enc.encode(text);
const text = (payload: Uint8Array): string => new TextDecoder().decode(payload);

describe('outcome frames', () => {
  it('round-trip', () => {
    const frames = [
      { jobIndex: 7, kind: 'result' as const, payload: bytes('seven') },
      { jobIndex: 70000, kind: 'error' as const, payload: bytes('Error') },
    ];
    const decoded = decodeOutcomeFrames(encodeOutcomeFrames(frames));
    expect(Array.isArray(decoded) && decoded.map((f) => [f.jobIndex, f.kind])).toEqual([
      [7, 'result'],
      [70000, 'error'],
    ]);
  });

  it('keeps payloads byte for byte, empty ones and the largest job index included', () => {
    const frames: OutcomeFrame[] = [
      { jobIndex: 1, kind: 'result', payload: new Uint8Array([0, 255, 9, 0]) },
      { jobIndex: 2, kind: 'error', payload: new Uint8Array() },
      { jobIndex: 2 ** 32 - 1, kind: 'result', payload: bytes('last') },
    ];
    const decoded = decodeOutcomeFrames(encodeOutcomeFrames(frames));
    expect(decoded).toEqual(frames);
    expect(decodeOutcomeFrames(new Uint8Array())).toEqual([]);
  });

  it('lays a frame out as jobIndex, kind, length (big-endian) and payload', () => {
    expect([
      ...encodeOutcomeFrames([{ jobIndex: 258, kind: 'error', payload: bytes('ab') }]),
    ]).toEqual([0, 0, 1, 2, 1, 0, 0, 0, 2, 97, 98]);
  });

  it('decodes frames inside a larger buffer, as views into it', () => {
    const frames = encodeOutcomeFrames([{ jobIndex: 3, kind: 'result', payload: bytes('xyz') }]);
    const padded = new Uint8Array(frames.byteLength + 5);
    padded.set(frames, 5);
    const decoded = decodeOutcomeFrames(padded.subarray(5));
    expect(Array.isArray(decoded) && decoded.map((f) => [f.jobIndex, text(f.payload)])).toEqual([
      [3, 'xyz'],
    ]);
    expect(Array.isArray(decoded) && decoded[0]?.payload.buffer).toBe(padded.buffer);
  });

  it('says what is malformed: a cut header, a cut payload, an unknown kind', () => {
    const one = encodeOutcomeFrames([{ jobIndex: 1, kind: 'result', payload: bytes('xyz') }]);
    const two = encodeOutcomeFrames([
      { jobIndex: 1, kind: 'result', payload: bytes('a') },
      { jobIndex: 2, kind: 'result', payload: bytes('b') },
    ]);
    expect(decodeOutcomeFrames(one.subarray(0, 5))).toBe('frame 1 is cut short');
    expect(decodeOutcomeFrames(one.subarray(0, 10))).toBe('frame 1 is cut short');
    expect(decodeOutcomeFrames(two.subarray(0, two.byteLength - 1))).toBe('frame 2 is cut short');
    const badKind = one.slice();
    badKind[4] = 2;
    expect(decodeOutcomeFrames(badKind)).toBe('frame 1 has kind 2; use 0 (result) or 1 (error)');
  });
});
