// systeminformation, loaded on the first host request that needs it rather
// than when the daemon starts: an idle node does not carry its code (about
// 10 MiB of RSS), and most nodes answer few host requests.
import type * as SystemInformation from "systeminformation";

let loaded: Promise<typeof SystemInformation> | undefined;

export function systemInformation(): Promise<typeof SystemInformation> {
  loaded ??= import("systeminformation");
  return loaded;
}
