/** Shared setup for image tests: temp store homes and build directories from the fixtures. */
import { mkdtemp, mkdir, writeFile, copyFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const FIXTURES = fileURLToPath(new URL("../../../test/fixtures/image/", import.meta.url));

export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `uniwasm-${prefix}-`));
}

export async function cleanup(...dirs: string[]): Promise<void> {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
}

export const GREET_TOML = `manifest_version = 1

[application]
name = "greet"
version = "1.0.0"

[module]
source = "greet.wasm"

[capabilities]
args = ["world"]
environment = { GREETING = "hello" }

[[capabilities.dirs]]
guest = "/static"
files = "static"
`;

/** A build directory holding greet.wasm, uniwasm.toml and static/greeting.txt. */
export async function greetProject(toml = GREET_TOML): Promise<string> {
  const dir = await tempDir("build");
  await copyFile(join(FIXTURES, "greet.wasm"), join(dir, "greet.wasm"));
  await mkdir(join(dir, "static", "sub"), { recursive: true });
  await writeFile(join(dir, "static", "greeting.txt"), "bonjour from the image\n");
  await writeFile(join(dir, "static", "sub", "b.txt"), "b\n");
  await writeFile(join(dir, "uniwasm.toml"), toml);
  return dir;
}

/** A build directory with one wat fixture and a manifest. */
export async function simpleProject(fixture: string, toml: string): Promise<string> {
  const dir = await tempDir("build");
  await copyFile(join(FIXTURES, fixture), join(dir, fixture));
  await writeFile(join(dir, "uniwasm.toml"), toml);
  return dir;
}
