// Whether CBOR bytes say plain data only: what a public subject takes must be
// what JSON can say. cbor-x acts on tags while it decodes (record
// definitions, shared references, Sets) and a decoded value no longer shows
// them all, so the bytes themselves are checked. parseRqst and decodePlain
// check them right after decoding, before anything decoded is used; of a
// refused request only its type, src and seq are read, for the error reply.
// Bytes this check passes decode (cbor-x, maps as objects, no records) to a
// value codec.ts's notPlainData passes too, so a CBOR message is walked once
// (test/unit/codecPlainData.test.ts holds the two to that).

/** How many levels of maps and arrays a message may nest (a request's envelope and params take two). */
export const MAX_PLAIN_DEPTH = 64;

// The open maps and arrays, innermost last: items each holds (-1 while of
// indefinite length), items read so far, whether a map. At most
// MAX_PLAIN_DEPTH are open, so the stack is allocated once: the check runs on
// every request, and allocating nothing keeps it off the young generation.
const left = new Float64Array(MAX_PLAIN_DEPTH);
const read = new Float64Array(MAX_PLAIN_DEPTH);
const isMap = new Uint8Array(MAX_PLAIN_DEPTH);

/** Bytes of the argument that follows an initial byte's additional information, or -1 when it is reserved. */
function argumentBytes(info: number): number {
  if (info < 24) return 0;
  return info === 24 ? 1 : info === 25 ? 2 : info === 26 ? 4 : info === 27 ? 8 : -1;
}

/**
 * What in the CBOR item `data` is beyond plain data, or undefined when it is
 * all plain: maps with text-string keys, arrays, text strings of definite
 * length, integers, floats, false, true, null and undefined (absent, as in
 * JSON), and bignums (tags 2 and 3 over a byte string) as numbers, nested at
 * most MAX_PLAIN_DEPTH deep. Any other tag (a Set is tag 258, a Map 259, a
 * Date 1), a byte string (it decodes to a Uint8Array), a map key that is not
 * a text string, another simple value, an indefinite-length string, deeper
 * nesting, bytes after the item or an item cut short is named. The walk is
 * iterative, reads each byte once and allocates nothing.
 */
export function cborBeyondPlainData(data: Uint8Array): string | undefined {
  const end = data.byteLength;
  let open = 0;
  let at = 0;
  let bignum = false;
  for (;;) {
    if (at >= end) return "a CBOR item cut short";
    const initial = data[at++] ?? 0;
    const major = initial >> 5;
    const info = initial & 0x1f;
    const parent = open - 1;
    if (initial === 0xff) {
      // A break ends the innermost container of indefinite length, and only one that is not halfway through a pair.
      if (parent < 0 || left[parent] !== -1 || (isMap[parent] === 1 && (read[parent] ?? 0) % 2 === 1))
        return "a stray CBOR break";
      open--;
    } else {
      if (parent >= 0 && isMap[parent] === 1 && (read[parent] ?? 0) % 2 === 0 && major !== 3)
        return "a CBOR map key that is not a text string";
      if (major === 2 && !bignum) return "a CBOR byte string";
      bignum = false;
      if (parent >= 0) read[parent] = (read[parent] ?? 0) + 1;
      if (info === 31) {
        if (major !== 4 && major !== 5) return "an indefinite-length CBOR string or a reserved item";
        if (open >= MAX_PLAIN_DEPTH) return `nesting deeper than ${MAX_PLAIN_DEPTH}`;
        left[open] = -1;
        read[open] = 0;
        isMap[open] = major === 5 ? 1 : 0;
        open++;
        continue;
      }
      const size = argumentBytes(info);
      if (major === 7) {
        // false, true, null, undefined; half, single and double floats.
        if (info >= 20 && info <= 23) {
          /* plain */
        } else if (info === 25 || info === 26 || info === 27) {
          if (at + size > end) return "a CBOR item cut short";
          at += size;
        } else return `the CBOR simple value ${info === 24 ? (data[at] ?? "?") : info}`;
      } else {
        if (size < 0 || at + size > end) return "a CBOR item cut short";
        let value = info < 24 ? info : 0;
        for (let i = 0; i < size; i++) value = value * 256 + (data[at + i] ?? 0);
        at += size;
        if (major === 2 || major === 3) {
          if (value > end - at) return "a CBOR item cut short";
          at += value;
        } else if (major === 4 || major === 5) {
          if (open >= MAX_PLAIN_DEPTH) return `nesting deeper than ${MAX_PLAIN_DEPTH}`;
          const items = major === 5 ? value * 2 : value;
          if (items > end - at) return "a CBOR item cut short";
          if (items > 0) {
            left[open] = items;
            read[open] = 0;
            isMap[open] = major === 5 ? 1 : 0;
            open++;
            continue;
          }
        } else if (major === 6) {
          if ((value !== 2 && value !== 3) || at >= end || (data[at] ?? 0) >> 5 !== 2)
            return `CBOR tag ${value}`;
          // The bignum's byte string, read next, is the item its container counts.
          if (parent >= 0) read[parent] = (read[parent] ?? 0) - 1;
          bignum = true;
          continue;
        }
      }
    }
    // An item is complete: close every definite container it completes.
    while (open > 0 && left[open - 1] !== -1 && (read[open - 1] ?? 0) >= (left[open - 1] ?? 0)) open--;
    if (open === 0) return at === end ? undefined : "bytes after the CBOR item";
  }
}
