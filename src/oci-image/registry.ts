// A Docker Registry HTTP API v2 client (the OCI distribution spec), for pulling only:
// GET /v2/<name>/manifests/<reference> and GET /v2/<name>/blobs/<digest>, with bearer token
// authentication from the WWW-Authenticate challenge (or Basic when credentials are given).
// HTTPS with the system's CA bundle; plain HTTP only for loopback hosts.
import { readFileSync } from "node:fs";
import { Readable } from "node:stream";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { Agent, fetch, type Response } from "undici";
import { isDigest, sha256Digest, type Digest } from "./digest.js";
import { MANIFEST_ACCEPT, MAX_MANIFEST_BYTES, type Descriptor } from "./documents.js";
import { OciImageError, asOciImageError } from "./errors.js";
import { isLoopbackHost, type RegistryRef } from "./reference.js";
import type { ManifestStore, RootDocument } from "./resolve.js";
import { parseWwwAuthenticate } from "./www-authenticate.js";
import { settled } from "../common/errors.js";

const MAX_TOKEN_RESPONSE_BYTES = 64 * 1024;
const MAX_ERROR_BODY_BYTES = 4096;
const HEADERS_TIMEOUT_MS = 60_000;
const BODY_TIMEOUT_MS = 300_000;
/** Debian's bundle; SSL_CERT_FILE overrides it as for OpenSSL. */
const SYSTEM_CA_FILE = "/etc/ssl/certs/ca-certificates.crt";

export interface RegistryCredentials {
  username: string;
  password: string;
}

export interface RegistryOptions {
  credentials?: RegistryCredentials;
  /** PEM bundle of trusted CAs; default SSL_CERT_FILE, else the system bundle, else Node's own. */
  caFile?: string;
}

function systemCa(caFile: string | undefined): string | undefined {
  const file = caFile ?? process.env.SSL_CERT_FILE ?? SYSTEM_CA_FILE;
  try {
    return readFileSync(file, "utf8");
  } catch (e) {
    if (caFile !== undefined) throw asOciImageError("usage", `cannot read CA bundle ${caFile}`, e);
    return undefined; // no system bundle: Node's bundled CAs
  }
}

/** Reads a response body of at most `max` bytes (Content-Length checked first). */
async function readBody(res: Response, max: number, what: string): Promise<Buffer> {
  const declared = Number(res.headers.get("content-length") ?? "NaN");
  if (Number.isFinite(declared) && declared > max) {
    await res.body?.cancel();
    throw new OciImageError("size", `${what}: ${declared} bytes, more than ${max}`);
  }
  const chunks: Buffer[] = [];
  let length = 0;
  if (res.body === null) return Buffer.alloc(0);
  for await (const chunk of res.body) {
    length += (chunk as Uint8Array).length;
    if (length > max) {
      await settled(res.body.cancel()); // the size error below is what the caller needs
      throw new OciImageError("size", `${what}: more than ${max} bytes`);
    }
    chunks.push(Buffer.from(chunk as Uint8Array));
  }
  return Buffer.concat(chunks);
}

/** The registry's error message (`{"errors":[{"code","message"}]}`), or the status text. */
async function errorDetail(res: Response): Promise<string> {
  const body = await readBody(res, MAX_ERROR_BODY_BYTES, "error body").catch(() => Buffer.alloc(0));
  try {
    const doc = JSON.parse(body.toString("utf8")) as { errors?: { code?: unknown; message?: unknown }[] };
    const first = doc.errors?.[0];
    if (first !== undefined) return `${String(first.code)}: ${String(first.message)}`;
  } catch {
    // not JSON: fall through
  }
  return `${res.status} ${res.statusText}`;
}

export class RegistryStore implements ManifestStore {
  readonly what: string;
  private readonly base: string;
  private readonly dispatcher: Agent;
  private authorization: string | undefined;

  constructor(
    private readonly ref: RegistryRef,
    private readonly opts: RegistryOptions = {},
  ) {
    const reference = ref.digest ?? ref.tag ?? "latest";
    this.what = `docker://${ref.host}/${ref.repository}${ref.digest !== undefined ? "@" : ":"}${reference}`;
    const scheme = isLoopbackHost(ref.host) ? "http" : "https";
    this.base = `${scheme}://${ref.host}/v2/${ref.repository}`;
    const ca = scheme === "https" ? systemCa(opts.caFile) : undefined;
    this.dispatcher = new Agent({
      headersTimeout: HEADERS_TIMEOUT_MS,
      bodyTimeout: BODY_TIMEOUT_MS,
      ...(ca === undefined ? {} : { connect: { ca } }),
    });
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }

  async root(signal?: AbortSignal): Promise<RootDocument> {
    const reference = this.ref.digest ?? this.ref.tag ?? "latest";
    const res = await this.get(`${this.base}/manifests/${reference}`, MANIFEST_ACCEPT, signal);
    const bytes = await readBody(res, MAX_MANIFEST_BYTES, `${this.what} manifest`);
    const actual = sha256Digest(bytes);
    const expected = this.ref.digest ?? res.headers.get("docker-content-digest") ?? undefined;
    if (expected !== undefined && isDigest(expected) && expected !== actual) {
      throw new OciImageError(
        "digest",
        `${this.what}: manifest digest mismatch: content is ${actual}, expected ${expected}`,
      );
    }
    const contentType = res.headers.get("content-type");
    return {
      bytes,
      annotations: {},
      repository: this.ref.repository,
      ...(contentType === null ? {} : { contentType }),
      ...(this.ref.tag === undefined ? {} : { tag: this.ref.tag }),
    };
  }

  async manifest(desc: Descriptor, signal?: AbortSignal): Promise<Buffer> {
    if (desc.size > MAX_MANIFEST_BYTES) {
      throw new OciImageError(
        "size",
        `${this.what}: manifest ${desc.digest} is ${desc.size} bytes, more than ${MAX_MANIFEST_BYTES}`,
      );
    }
    const res = await this.get(`${this.base}/manifests/${desc.digest}`, MANIFEST_ACCEPT, signal);
    const bytes = await readBody(res, desc.size, `${this.what} manifest ${desc.digest}`);
    const actual = sha256Digest(bytes);
    if (actual !== desc.digest || bytes.length !== desc.size) {
      throw new OciImageError(
        "digest",
        `${this.what}: manifest digest mismatch: content is ${actual}, expected ${desc.digest}`,
      );
    }
    return bytes;
  }

  async blob(desc: { digest: Digest; size: number }, signal?: AbortSignal): Promise<Readable> {
    const res = await this.get(`${this.base}/blobs/${desc.digest}`, undefined, signal);
    const declared = Number(res.headers.get("content-length") ?? "NaN");
    if (Number.isFinite(declared) && declared !== desc.size) {
      await res.body?.cancel();
      throw new OciImageError(
        "digest",
        `${this.what}: blob ${desc.digest} is ${declared} bytes, its descriptor says ${desc.size}`,
      );
    }
    if (res.body === null)
      throw new OciImageError("registry", `${this.what}: blob ${desc.digest}: empty response`);
    return Readable.fromWeb(res.body as WebReadableStream<Uint8Array>);
  }

  /** GET with the current authorization; one 401 triggers authentication and one retry. */
  private async get(
    url: string,
    accept: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<Response> {
    let res = await this.fetchOnce(url, accept, signal);
    if (res.status === 401) {
      const challenge = res.headers.get("www-authenticate");
      await res.body?.cancel();
      await this.authenticate(challenge, signal);
      res = await this.fetchOnce(url, accept, signal);
    }
    if (!res.ok) {
      const detail = await errorDetail(res);
      const path = url.slice(url.indexOf("/v2/"));
      throw new OciImageError("registry", `${this.what}: GET ${path}: ${detail}`);
    }
    return res;
  }

  private async fetchOnce(
    url: string,
    accept: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<Response> {
    const headers: Record<string, string> = {};
    if (accept !== undefined) headers.accept = accept;
    if (this.authorization !== undefined) headers.authorization = this.authorization;
    try {
      return await fetch(url, {
        headers,
        dispatcher: this.dispatcher,
        redirect: "follow",
        ...(signal === undefined ? {} : { signal }),
      });
    } catch (e) {
      if ((e as Error).name === "AbortError") throw e;
      const cause = (e as { cause?: unknown }).cause;
      throw asOciImageError("source", `${this.what}: cannot reach ${new URL(url).host}`, cause ?? e);
    }
  }

  private basic(): string | undefined {
    const c = this.opts.credentials;
    return c === undefined
      ? undefined
      : `Basic ${Buffer.from(`${c.username}:${c.password}`).toString("base64")}`;
  }

  private async authenticate(header: string | null, signal: AbortSignal | undefined): Promise<void> {
    if (this.authorization !== undefined && !this.authorization.startsWith("Bearer")) {
      throw new OciImageError("registry", `${this.what}: the registry refused the credentials`);
    }
    const challenges = parseWwwAuthenticate(header ?? "");
    const bearer = challenges.find((c) => c.scheme === "bearer");
    const basicChallenge = challenges.find((c) => c.scheme === "basic");
    if (bearer !== undefined) {
      this.authorization = `Bearer ${await this.fetchToken(bearer.params, signal)}`;
    } else if (basicChallenge !== undefined) {
      const basic = this.basic();
      if (basic === undefined)
        throw new OciImageError(
          "registry",
          `${this.what}: the registry requires credentials (--creds USER:PASSWORD)`,
        );
      this.authorization = basic;
    } else {
      throw new OciImageError(
        "registry",
        `${this.what}: 401 without a Bearer or Basic challenge (WWW-Authenticate: ${header ?? "missing"})`,
      );
    }
  }

  /** Asks the challenge's realm for a pull token (Docker token authentication). */
  private async fetchToken(params: Record<string, string>, signal: AbortSignal | undefined): Promise<string> {
    const realm = params.realm;
    if (realm === undefined)
      throw new OciImageError("registry", `${this.what}: Bearer challenge without a realm`);
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new OciImageError("registry", `${this.what}: Bearer realm "${realm}" is not a URL`);
    }
    if (url.protocol !== "https:" && !(url.protocol === "http:" && isLoopbackHost(url.host))) {
      throw new OciImageError(
        "registry",
        `${this.what}: refusing token realm ${url.origin}: HTTPS is required (HTTP only on loopback)`,
      );
    }
    if (params.service !== undefined) url.searchParams.set("service", params.service);
    url.searchParams.set("scope", params.scope ?? `repository:${this.ref.repository}:pull`);
    const headers: Record<string, string> = {};
    const basic = this.basic();
    if (basic !== undefined) headers.authorization = basic;
    let res: Response;
    try {
      res = await fetch(url, {
        headers,
        dispatcher: this.dispatcher,
        ...(signal === undefined ? {} : { signal }),
      });
    } catch (e) {
      throw asOciImageError(
        "registry",
        `${this.what}: cannot reach token service ${url.origin}`,
        (e as { cause?: unknown }).cause ?? e,
      );
    }
    if (!res.ok)
      throw new OciImageError(
        "registry",
        `${this.what}: token service ${url.origin}: ${await errorDetail(res)}`,
      );
    const body = await readBody(res, MAX_TOKEN_RESPONSE_BYTES, "token response");
    let doc: { token?: unknown; access_token?: unknown };
    try {
      doc = JSON.parse(body.toString("utf8")) as typeof doc;
    } catch {
      throw new OciImageError("registry", `${this.what}: token service answered something that is not JSON`);
    }
    const token = typeof doc.token === "string" ? doc.token : doc.access_token;
    if (typeof token !== "string" || token.length === 0 || /[\r\n]/.test(token)) {
      throw new OciImageError("registry", `${this.what}: token service answered without a token`);
    }
    return token;
  }
}
