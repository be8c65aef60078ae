// Whether CBOR bytes say plain data only: what a public subject takes must be
// what JSON can say. cbor-x acts on tags while it decodes (record
// definitions, shared references, Sets) and a decoded value no longer shows
// them all, so the bytes themselves are checked. parseRqst and decodePlain
// check them right after decoding, before anything decoded is used; of a
// refused request only its type, src and seq are read, for the error reply.

/**
 * What in the CBOR item `data` is beyond plain data, or undefined when it is
 * all plain: maps with text-string keys, arrays, text and byte strings of
 * definite length, integers, floats, false, true, null and undefined (absent,
 * as in JSON), and bignums (tags 2 and 3 over a byte string) as numbers. Any
 * other tag (a Set is tag 258, a Map 259, a Date 1), a map key that is not a
 * text string, another simple value, an indefinite-length string, bytes
 * after the item or an item cut short is named. The walk is iterative, reads
 * each byte once and never allocates by a length the message declares.
 */
export function cborBeyondPlainData(data: Uint8Array): string | undefined {
  // Each open array or map: how many items it holds (-1 while of indefinite length), how many were read, whether a map.
  const open: { left: number; map: boolean; read: number }[] = [];
  let at = 0;
  const argument = (info: number): number | undefined => {
    if (info < 24) return info;
    const size = info === 24 ? 1 : info === 25 ? 2 : info === 26 ? 4 : info === 27 ? 8 : 0;
    if (size === 0 || at + size > data.byteLength) return undefined;
    let value = 0;
    for (let i = 0; i < size; i++) value = value * 256 + (data[at + i] ?? 0);
    at += size;
    return value;
  };
  for (;;) {
    if (at >= data.byteLength) return "a CBOR item cut short";
    const initial = data[at++] ?? 0;
    const major = initial >> 5;
    const info = initial & 0x1f;
    const parent = open[open.length - 1];
    if (initial === 0xff) {
      // A break ends the innermost container of indefinite length, and only one that is not halfway through a pair.
      if (parent === undefined || parent.left !== -1 || (parent.map && parent.read % 2 === 1))
        return "a stray CBOR break";
      open.pop();
    } else {
      if (parent?.map && parent.read % 2 === 0 && major !== 3)
        return "a CBOR map key that is not a text string";
      if (parent) parent.read++;
      if (info === 31) {
        if (major !== 4 && major !== 5) return "an indefinite-length CBOR string or a reserved item";
        open.push({ left: -1, map: major === 5, read: 0 });
        continue;
      }
      if (major === 7) {
        // false, true, null, undefined; half, single and double floats.
        if (info >= 20 && info <= 23) {
          /* plain */
        } else if (info === 25 || info === 26 || info === 27) {
          if (argument(info) === undefined) return "a CBOR item cut short";
        } else return `the CBOR simple value ${info === 24 ? (data[at] ?? "?") : info}`;
      } else {
        const value = argument(info);
        if (value === undefined) return "a CBOR item cut short";
        if (major === 2 || major === 3) {
          if (value > data.byteLength - at) return "a CBOR item cut short";
          at += value;
        } else if (major === 4 || major === 5) {
          const items = major === 5 ? value * 2 : value;
          if (items > data.byteLength - at) return "a CBOR item cut short";
          if (items > 0) {
            open.push({ left: items, map: major === 5, read: 0 });
            continue;
          }
        } else if (major === 6) {
          if ((value !== 2 && value !== 3) || at >= data.byteLength || (data[at] ?? 0) >> 5 !== 2)
            return `CBOR tag ${value}`;
          // The bignum's byte string, read next, is the item its container counts.
          if (parent) parent.read--;
          continue;
        }
      }
    }
    // An item is complete: close every definite container it completes.
    for (let top = open[open.length - 1]; top !== undefined; top = open[open.length - 1]) {
      if (top.left === -1 || top.read < top.left) break;
      open.pop();
    }
    if (open.length === 0) return at === data.byteLength ? undefined : "bytes after the CBOR item";
  }
}
