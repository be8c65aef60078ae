// The files the file rows move, the same bytes on both sides: a few names,
// each with a few distinct contents of one size, so consecutive commits are
// new versions with new bytes. Contents are a fixed pattern (no randomness),
// hashed before the clock starts: the client needs the SHA-256 before it can
// send COMMIT, and producing it is the caller's work, not the store's.
import { bytesSource, type FileSource } from "../../client/fileClient.js";

/** Distinct file names a row cycles through. */
const NAMES = 4;
/** Distinct contents per name: every commit of a name carries bytes its previous version did not. */
const CONTENTS = 2;

export interface BenchFile {
  /** The file store's name, e.g. `bench/f1`. */
  readonly name: string;
  /** The raw side's subject token for the same file, e.g. `f1`. */
  readonly token: string;
  readonly bytes: Uint8Array;
  readonly source: FileSource;
}

/** `NAMES × CONTENTS` files of `size` bytes; the i-th commit of a row uses `files[i % files.length]`. */
export function benchFiles(size: number): readonly BenchFile[] {
  const files: BenchFile[] = [];
  for (let c = 0; c < CONTENTS; c++) {
    for (let n = 0; n < NAMES; n++) {
      const bytes = pattern(size, c * NAMES + n);
      files.push({ name: `bench/f${n}`, token: `f${n}`, bytes, source: bytesSource(bytes) });
    }
  }
  return files;
}

function pattern(size: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + seed * 17 + (i >>> 8)) & 0xff;
  return bytes;
}

/** "1 KiB", "976.6 KiB": sizes in notes, exactly as committed. */
export function describeSize(size: number): string {
  return size < 1024 ? `${size} B` : `${Number((size / 1024).toFixed(1))} KiB (${size} B)`;
}
