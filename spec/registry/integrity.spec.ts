import { expect } from 'chai';
import { createHash, sign } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { IntegrityError, InvalidArgumentError, SignatureError } from '../../lib/errors.js';
import { canonicalJson } from '../../lib/registry/canonical-json.js';
import {
  generateKeyPair,
  hashPluginFiles,
  keyIdOf,
  loadTrustedKeys,
  signaturePayload,
  signPlugin,
  verifyPlugin,
  type SignableManifest,
} from '../../lib/registry/integrity.js';

const publisher = generateKeyPair();
const stranger = generateKeyPair();
const trustPublisher = { requireSignature: true, trustedKeys: [publisher.publicKeyPem] };

describe('registry/integrity', () => {
  let tmp: string;
  beforeEach(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'logomesh-integrity-'));
  });
  afterEach(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  async function makePlugin(files: Record<string, string> = {}, manifest: object = {}): Promise<string> {
    const dir = path.join(tmp, 'plugin');
    const all = {
      'plugin.json': JSON.stringify({ id: 'hello', version: '1.0.0', permissions: { fs: [] }, ...manifest }, null, 2),
      'index.js': 'export default 1;\n',
      'lib/util.js': 'export const two = 2;\n',
      ...files,
    };
    for (const [rel, text] of Object.entries(all)) {
      await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
      await writeFile(path.join(dir, rel), text);
    }
    return dir;
  }

  const readManifest = async (dir: string): Promise<SignableManifest> =>
    JSON.parse(await readFile(path.join(dir, 'plugin.json'), 'utf8'));

  type ErrorClass = typeof IntegrityError | typeof SignatureError;

  /** Awaits a refusal and checks what the user sees: class, stable code and, for integrity, the files. */
  async function refusal<C extends ErrorClass>(promise: Promise<unknown>, Class: C, files?: string[]): Promise<InstanceType<C>> {
    let caught: unknown;
    try {
      await promise;
    } catch (error) {
      caught = error;
    }
    expect(caught).to.be.instanceOf(Class);
    const error = caught as InstanceType<C>;
    expect(error.code).to.equal(Class.code);
    if (files) expect((error as IntegrityError).files).to.deep.equal(files);
    return error;
  }

  describe('hashPluginFiles', () => {
    it('hashes every file but the top-level plugin.json, with sorted posix paths, skipping .git', async () => {
      const dir = await makePlugin({ 'b/plugin.json': '{}', 'a.wasm': 'x', '.git/HEAD': 'ref', 'node_modules/m/i.js': '' });
      const hashes = await hashPluginFiles(dir);
      expect(Object.keys(hashes)).to.deep.equal(['a.wasm', 'b/plugin.json', 'index.js', 'lib/util.js', 'node_modules/m/i.js']);
      expect(hashes['a.wasm']).to.equal(createHash('sha256').update('x').digest('hex'));
    });

    it('refuses a symlink in the plugin folder, naming it', async () => {
      const dir = await makePlugin();
      await writeFile(path.join(tmp, 'outside.js'), 'steal()');
      await symlink(path.join(tmp, 'outside.js'), path.join(dir, 'lib', 'link.js'));
      const error = await refusal(hashPluginFiles(dir), IntegrityError, ['lib/link.js']);
      expect(error.code).to.equal('LOGOMESH_ERR_INTEGRITY');
    });
  });

  describe('signPlugin + verifyPlugin', () => {
    it('signs, writes plugin.json back in order, and verifies with the trusted key', async () => {
      const dir = await makePlugin();
      const signed = await signPlugin(dir, publisher.privateKeyPem);
      const text = await readFile(path.join(dir, 'plugin.json'), 'utf8');
      expect(text).to.equal(`${JSON.stringify(signed, null, 2)}\n`);
      expect(Object.keys(signed)).to.deep.equal(['id', 'version', 'permissions', 'integrity', 'signature']);
      expect(signed.signature).to.include({ algorithm: 'ed25519', keyId: publisher.keyId });

      const result = await verifyPlugin(dir, await readManifest(dir), trustPublisher);
      expect(result).to.deep.equal({ status: 'verified', keyId: publisher.keyId, warnings: [] });
    });

    it('re-signing an already signed plugin gives a verifiable manifest', async () => {
      const dir = await makePlugin();
      await signPlugin(dir, stranger.privateKeyPem);
      await signPlugin(dir, publisher.privateKeyPem);
      expect((await verifyPlugin(dir, await readManifest(dir), trustPublisher)).status).to.equal('verified');
    });

    it('a tampered file → IntegrityError naming it', async () => {
      const dir = await makePlugin();
      await signPlugin(dir, publisher.privateKeyPem);
      await writeFile(path.join(dir, 'lib/util.js'), 'export const two = 3;\n');
      const error = await refusal(verifyPlugin(dir, await readManifest(dir), trustPublisher), IntegrityError, ['lib/util.js']);
      expect(error.pluginId).to.equal('hello');
      expect(error.message).to.match(/reinstall/).and.match(/re-sign/);
    });

    it('an added file → IntegrityError naming it', async () => {
      const dir = await makePlugin();
      await signPlugin(dir, publisher.privateKeyPem);
      await writeFile(path.join(dir, 'lib/extra.js'), 'evil()');
      await refusal(verifyPlugin(dir, await readManifest(dir), trustPublisher), IntegrityError, ['lib/extra.js']);
    });

    it('a removed file → IntegrityError naming it', async () => {
      const dir = await makePlugin();
      await signPlugin(dir, publisher.privateKeyPem);
      await unlink(path.join(dir, 'index.js'));
      await refusal(verifyPlugin(dir, await readManifest(dir), trustPublisher), IntegrityError, ['index.js']);
    });

    it('a symlink added after signing → IntegrityError naming it', async () => {
      const dir = await makePlugin();
      await signPlugin(dir, publisher.privateKeyPem);
      await symlink('/etc/hosts', path.join(dir, 'hosts'));
      const error = await refusal(verifyPlugin(dir, await readManifest(dir), trustPublisher), IntegrityError, ['hosts']);
      expect(error.pluginId).to.equal('hello');
    });

    it('a manifest field changed after signing (permissions) → SignatureError', async () => {
      const dir = await makePlugin();
      await signPlugin(dir, publisher.privateKeyPem);
      const manifest = await readManifest(dir);
      manifest.permissions = { fs: ['/'] };
      const error = await refusal(verifyPlugin(dir, manifest, trustPublisher), SignatureError);
      expect(error.code).to.equal('LOGOMESH_ERR_SIGNATURE');
      expect(error.pluginId).to.equal('hello');
      expect(error.message).to.match(/signature does not match/);
    });

    it('a file and its listed hash both changed → SignatureError (hashes are signed)', async () => {
      const dir = await makePlugin();
      await signPlugin(dir, publisher.privateKeyPem);
      await writeFile(path.join(dir, 'index.js'), 'evil()');
      const manifest = await readManifest(dir);
      manifest.integrity!.files['index.js'] = (await hashPluginFiles(dir))['index.js']!;
      await refusal(verifyPlugin(dir, manifest, trustPublisher), SignatureError);
    });

    it('stripped signature: refused under requireSignature, loads with a warning otherwise', async () => {
      const dir = await makePlugin();
      await signPlugin(dir, publisher.privateKeyPem);
      const manifest = await readManifest(dir);
      delete manifest.signature;

      const error = await refusal(verifyPlugin(dir, manifest, trustPublisher), SignatureError);
      expect(error.message).to.match(/unsigned plugin refused/).and.match(/logomesh sign/);

      const result = await verifyPlugin(dir, manifest, { trustedKeys: [publisher.publicKeyPem] });
      expect(result.status).to.equal('unsigned');
      expect(result.keyId).to.equal(undefined);
      expect(result.warnings).to.have.length(1);
    });

    it('stripped signature without requireSignature still checks the file hashes', async () => {
      const dir = await makePlugin();
      await signPlugin(dir, publisher.privateKeyPem);
      const manifest = await readManifest(dir);
      delete manifest.signature;
      await writeFile(path.join(dir, 'index.js'), 'evil()');
      await refusal(verifyPlugin(dir, manifest, {}), IntegrityError, ['index.js']);
    });

    it('signed by an unknown key → SignatureError naming the key id', async () => {
      const dir = await makePlugin();
      await signPlugin(dir, stranger.privateKeyPem);
      const error = await refusal(verifyPlugin(dir, await readManifest(dir), trustPublisher), SignatureError);
      expect(error.message).to.include(`unknown key ${stranger.keyId}`).and.include('trustedKeys');
    });

    it('signed by key A with keyId replaced by trusted key B → SignatureError', async () => {
      const dir = await makePlugin();
      await signPlugin(dir, stranger.privateKeyPem);
      const manifest = await readManifest(dir);
      manifest.signature!.keyId = publisher.keyId;
      const error = await refusal(verifyPlugin(dir, manifest, trustPublisher), SignatureError);
      expect(error.message).to.match(/signature does not match/);
    });

    it('a signature without integrity → SignatureError', async () => {
      const dir = await makePlugin();
      const manifest: SignableManifest = await readManifest(dir);
      const key = publisher.privateKeyPem;
      manifest.signature = {
        algorithm: 'ed25519',
        keyId: publisher.keyId,
        value: sign(null, signaturePayload(manifest), key).toString('base64'),
      };
      const error = await refusal(verifyPlugin(dir, manifest, trustPublisher), SignatureError);
      expect(error.message).to.match(/no 'integrity'/);
    });

    it('an unsigned plugin without a policy loads as unsigned with a warning', async () => {
      const dir = await makePlugin();
      const result = await verifyPlugin(dir, await readManifest(dir), {});
      expect(result.status).to.equal('unsigned');
      expect(result.warnings).to.have.length(1);
      expect(result.warnings[0]).to.include('hello');
    });

    it('refuses to sign a plugin that contains a symlink', async () => {
      const dir = await makePlugin();
      await symlink('index.js', path.join(dir, 'alias.js'));
      await refusal(signPlugin(dir, publisher.privateKeyPem), IntegrityError, ['alias.js']);
    });
  });

  describe('keys', () => {
    it('keyIdOf is 16 hex chars and the same for the public and the private key', () => {
      expect(publisher.keyId).to.match(/^[0-9a-f]{16}$/);
      expect(keyIdOf(publisher.privateKeyPem)).to.equal(publisher.keyId);
      expect(stranger.keyId).to.not.equal(publisher.keyId);
    });

    it('loadTrustedKeys accepts PEM strings and PEM files, refuses private keys', async () => {
      const file = path.join(tmp, 'publisher.pub.pem');
      await writeFile(file, publisher.publicKeyPem);
      expect(loadTrustedKeys([file, stranger.publicKeyPem]).map((pem) => keyIdOf(pem))).to.deep.equal([
        publisher.keyId,
        stranger.keyId,
      ]);
      expect(() => loadTrustedKeys([publisher.privateKeyPem])).to.throw(InvalidArgumentError);
      expect(() => loadTrustedKeys([path.join(tmp, 'nope.pem')])).to.throw(InvalidArgumentError);
    });
  });

  describe('canonicalJson', () => {
    it('does not depend on key order, at any depth', () => {
      const a = canonicalJson({ b: 1, a: { d: [1, { y: 2, x: 1 }], c: 'é' } });
      const b = canonicalJson({ a: { c: 'é', d: [1, { x: 1, y: 2 }] }, b: 1 });
      expect(a).to.equal(b).and.equal('{"a":{"c":"é","d":[1,{"x":1,"y":2}]},"b":1}');
    });

    it('refuses values JSON cannot carry, naming where', () => {
      const cyclic: Record<string, unknown> = {};
      cyclic.self = cyclic;
      for (const bad of [{ a: undefined }, { a: NaN }, [1n], { d: new Date(0) }, cyclic, [() => 1]]) {
        expect(() => canonicalJson(bad)).to.throw(InvalidArgumentError);
      }
      expect(() => canonicalJson({ a: [0, undefined] })).to.throw(/'\/a\/1'/);
    });
  });
});
