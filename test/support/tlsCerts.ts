// Throwaway TLS material for tests, made with the openssl CLI: a private CA, a
// server certificate for localhost and 127.0.0.1, and a client certificate,
// all signed by that CA and valid for one day.
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";

export interface TestCerts {
  readonly ca: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
}

/** Whether the openssl CLI can be run. */
export function opensslInstalled(): boolean {
  const probe = spawnSync("openssl", ["version"], { encoding: "utf8" });
  return probe.error === undefined && probe.status === 0;
}

function openssl(args: readonly string[]): void {
  const run = spawnSync("openssl", args, { encoding: "utf8" });
  if (run.error !== undefined || run.status !== 0)
    throw new Error(`openssl ${args.join(" ")} failed: ${run.error?.message ?? run.stderr}`);
}

/** An EC P-256 key and a certificate for `cn` signed by the CA in `dir`, with these extensions. */
function signed(dir: string, name: string, cn: string, extensions: string): { cert: string; key: string } {
  const key = join(dir, `${name}-key.pem`);
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}-cert.pem`);
  const ext = join(dir, `${name}.ext`);
  writeFileSync(ext, extensions);
  openssl(
    ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"].concat([
      "-subj",
      `/CN=${cn}`,
      "-keyout",
      key,
      "-out",
      csr,
    ]),
  );
  openssl(
    ["x509", "-req", "-in", csr, "-CA", join(dir, "ca.pem"), "-CAkey", join(dir, "ca-key.pem")].concat([
      "-CAcreateserial",
      "-days",
      "1",
      "-extfile",
      ext,
      "-out",
      cert,
    ]),
  );
  return { cert, key };
}

/** Makes the CA and both certificates in `dir`; throws, with openssl's message, when openssl fails. */
export function makeTestCerts(dir: string): TestCerts {
  const ca = join(dir, "ca.pem");
  openssl(
    ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"].concat([
      "-days",
      "1",
      "-subj",
      "/CN=dvs test CA",
      "-keyout",
      join(dir, "ca-key.pem"),
      "-out",
      ca,
    ]),
  );
  const server = signed(
    dir,
    "server",
    "localhost",
    "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
  );
  const client = signed(dir, "client", "dvsctl", "extendedKeyUsage=clientAuth\n");
  return {
    ca,
    serverCert: server.cert,
    serverKey: server.key,
    clientCert: client.cert,
    clientKey: client.key,
  };
}
