import { expect } from 'chai';
import wabtInit from 'wabt';
import { PluginLoadError } from '../../../lib/errors.js';
import { checkWasmModule } from '../../../lib/runtimes/wasm/wasm-validator.js';

const policy = { maxMemoryBytes: 16 * 2 ** 20, maxTableElements: 100 };
type Wabt = Awaited<ReturnType<typeof wabtInit>>;

describe('checkWasmModule', () => {
  let wabt: Wabt;
  before(async () => {
    wabt = await wabtInit();
  });

  function wasm(body: string): Uint8Array {
    const module = wabt.parseWat('inline.wat', `(module ${body})`, { multi_value: true, reference_types: true });
    try {
      return module.toBinary({}).buffer;
    } finally {
      module.destroy();
    }
  }

  const base = `(memory (export "memory") 1 2) (func (export "alloc") (param i32) (result i32) (i32.const 0))`;

  function problems(body: string): string {
    try {
      checkWasmModule(wasm(body), policy, 'p');
    } catch (e) {
      expect(e).to.be.instanceOf(PluginLoadError);
      return (e as Error).message;
    }
    throw new Error('expected the module to be refused');
  }

  it('derives exposed methods, handlers and hooks from the exports', () => {
    const json = `(param i32 i32) (result i64) (i64.const 0)`;
    const abi = checkWasmModule(
      wasm(`${base} (func (export "lm_a") ${json}) (func (export "lm_on_b") ${json}) (func (export "lm_hook_onStop") ${json})
        (func (export "lm_c") (param i32 i32) (result i32 i32) (i32.const 0) (i32.const 0)) (func (export "helper"))`),
      policy,
      'p',
    );
    expect(abi).to.deep.include({ exposed: ['a', 'c'], handlers: ['b'], hooks: ['onStop'], describe: false, maxMemoryBytes: 2 * 65536 });
  });

  it('refuses a host import with another signature', () => {
    expect(problems(`(import "logomesh" "log" (func (param i32))) ${base}`)).to.match(/'logomesh'.'log' \(function\) has type \(i32\) -> \(\)/);
  });

  it('accepts logomesh.request (i32, i32) -> i64 and refuses it with another signature or other names', () => {
    expect(() => checkWasmModule(wasm(`(import "logomesh" "request" (func (param i32 i32) (result i64))) ${base}`), policy, 'p')).to.not.throw();
    expect(problems(`(import "logomesh" "request" (func (param i32 i32) (result i32 i32))) ${base}`)).to.include(
      `'logomesh'.'request' (function) has type (i32, i32) -> (i32, i32); the host offers (i32, i32) -> (i64)`,
    );
    const message = problems(`(import "logomesh" "fetch" (func (param i32 i32) (result i64))) ${base}`);
    expect(message).to.include(`'logomesh'.'fetch' (function) is not offered`);
    expect(message).to.include('logomesh.request');
  });

  it('refuses memory, table and global imports even from logomesh', () => {
    const message = problems(`(import "logomesh" "mem" (memory 1 1)) (func (export "alloc") (param i32) (result i32) (i32.const 0))`);
    expect(message).to.include(`'logomesh'.'mem' (memory) is not offered`);
  });

  it('refuses ABI exports with the wrong signature and unknown hooks', () => {
    const message = problems(`${base} (func (export "lm_x") (param i32) (result i64) (i64.const 0)) (func (export "lm_hook_onBoot") (param i32 i32) (result i64) (i64.const 0))`);
    expect(message).to.include(`export 'lm_x' has type (i32) -> (i64)`);
    expect(message).to.include(`'lm_hook_onBoot' names no lifecycle hook`);
  });

  it('requires alloc and an exported memory', () => {
    const message = problems(`(memory 1 1)`);
    expect(message).to.include(`export it as 'memory'`);
    expect(message).to.include(`export function 'alloc'`);
  });

  it('refuses a table above maxTableElements', () => {
    expect(problems(`${base} (table 1 101 funcref)`)).to.match(/table 0 declares a maximum of 101 elements/);
  });

  it('refuses bytes that are not WebAssembly', () => {
    expect(() => checkWasmModule(new TextEncoder().encode('(module)'), policy, 'p')).to.throw(PluginLoadError, /not a WebAssembly/);
    const truncated = wasm(base).subarray(0, 20);
    expect(() => checkWasmModule(truncated, policy, 'p')).to.throw(PluginLoadError);
  });
});
