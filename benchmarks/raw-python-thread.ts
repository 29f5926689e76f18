// Entry of the raw Python baselines' worker thread (raw-python-worker.ts): a bare
// worker_threads Worker running plain Pyodide as its README shows (`loadPyodide()`, no vm
// realm, no sealing, no SDK, no piscina, no host). It defines the fixture's Python function
// and answers each JSON text `[text]` with the JSON text of `upper(text)`, marshalled in
// Python with json.loads / json.dumps as our runtime does. `snapshot` restores a Pyodide
// memory snapshot instead of booting cold; `makeSnapshot` boots so that one can be taken,
// and answers the message 'snapshot' with its bytes.
import { parentPort, workerData } from 'node:worker_threads';
import { loadPyodide } from 'pyodide';

export interface RawPythonThreadData {
  snapshot?: Uint8Array;
  makeSnapshot?: boolean;
}

const PYTHON = `
import json

def upper(text):
    return text.upper()

def handle(message):
    return json.dumps(upper(*json.loads(message)))
`;

const port = parentPort!;
const data = workerData as RawPythonThreadData;

const pyodide = await loadPyodide({
  ...(data.snapshot ? { _loadSnapshot: data.snapshot } : {}),
  ...(data.makeSnapshot ? { _makeSnapshot: true } : {}),
});
const snapshot = data.makeSnapshot ? pyodide.makeMemorySnapshot() : undefined;
pyodide.runPython(PYTHON);
const handle = pyodide.globals.get('handle') as (message: string) => string;
port.on('message', (message: string) => {
  if (message === 'snapshot' && snapshot) port.postMessage(snapshot);
  else port.postMessage(handle(message));
});
port.postMessage('ready');
