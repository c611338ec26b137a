// The SDK's adminFiles (@abe-stack/sdk/admin), which the records browser's
// file cells use, against a fake fetch: what it sends (the token, If-Match,
// multipart) and how a refusal comes back (the SDK's error classes, a
// stale version's current record). The browser test runs it for real.
import { afterEach, describe, expect, it, vi } from "vitest";
import { ConflictError, NetworkError, NotFoundError, UnauthorizedError } from "../../sdk/js/src/errors.js";
import { adminFiles } from "../../sdk/js/src/admin.js";

const client = { url: "http://abe.test/", getAccessToken: async () => "tok" };
const base = "http://abe.test/api/admin/collections/al%20bums/records/r%2F1/files/cover";

function answer(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(body === null ? null : typeof body === "string" ? body : JSON.stringify(body), { status, headers: { "Content-Type": "application/json", ...headers } });
}

afterEach(() => vi.unstubAllGlobals());

describe("adminFiles", () => {
  it("uploads as multipart with the token and If-Match, and resolves with the record", async () => {
    const fetch = vi.fn(async (_url: string, _init: RequestInit) => answer(201, { id: "r/1", cover: "abc", version: 3 }));
    vi.stubGlobal("fetch", fetch);
    const rec = await adminFiles(client).upload("al bums", "r/1", "cover", new Blob(["png"], { type: "image/png" }), { ifMatch: 2, name: "c.png" });
    expect(rec).toEqual({ id: "r/1", cover: "abc", version: 3 });
    const [url, init] = fetch.mock.calls[0]!;
    expect(url).toBe(base);
    expect(init.method).toBe("POST");
    expect(init.headers).toEqual({ Authorization: "Bearer tok", "If-Match": '"2"' });
    const form = init.body as FormData;
    expect((form.get("file") as File).name).toBe("c.png");
  });

  it("downloads bytes with their type and the name the server gives", async () => {
    vi.stubGlobal("fetch", async () => new Response("hello", { status: 200, headers: { "Content-Type": "text/plain", "Content-Disposition": 'attachment; filename="abc.txt"' } }));
    const f = await adminFiles(client).download("al bums", "r/1", "cover", "abc");
    expect(await f.blob.text()).toBe("hello");
    expect(f).toMatchObject({ type: "text/plain", name: "abc.txt" });
    expect(adminFiles(client).url("al bums", "r/1", "cover", "a b")).toBe(base + "/a%20b");
  });

  it("rejects with the SDK's errors: a stale version carries the current record", async () => {
    const current = { id: "r/1", version: 5 };
    vi.stubGlobal("fetch", async () => answer(409, { type: "https://abe.dev/errors/version_conflict", status: 409, detail: "stale", current }, { "Content-Type": "application/problem+json" }));
    const err = await adminFiles(client).remove("al bums", "r/1", "cover", "abc", { ifMatch: 4 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConflictError);
    expect((err as ConflictError).code).toBe("version_conflict");
    expect((err as ConflictError).current).toEqual(current);

    vi.stubGlobal("fetch", async () => answer(404, { type: "https://abe.dev/errors/not_found", status: 404, detail: "no such file" }));
    await expect(adminFiles(client).download("al bums", "r/1", "cover", "gone")).rejects.toBeInstanceOf(NotFoundError);
    vi.stubGlobal("fetch", async () => answer(401, "not json"));
    await expect(adminFiles(client).download("al bums", "r/1", "cover")).rejects.toBeInstanceOf(UnauthorizedError);
    vi.stubGlobal("fetch", async () => {
      throw new TypeError("connection refused");
    });
    await expect(adminFiles(client).download("al bums", "r/1", "cover")).rejects.toBeInstanceOf(NetworkError);
  });

  it("sends no Authorization header when signed out", async () => {
    const fetch = vi.fn(async (_url: string, _init: RequestInit) => answer(204, null));
    vi.stubGlobal("fetch", fetch);
    await adminFiles({ url: "http://abe.test", getAccessToken: async () => null }).remove("al bums", "r/1", "cover");
    expect(fetch.mock.calls[0]![1].headers).toEqual({});
  });
});
