import { startCliProcess, type ServerProcess } from '../../src/cli/child.ts';

export { clusterSecrets, freePort, startCliProcess, stopProcess, type CliProcess, type CliProcessOptions, type ServerProcess } from '../../src/cli/child.ts';

/** Starts `flashsale start` as a real child process and resolves once /ready answers 200. */
export async function startServerProcess(env: Record<string, string>, port: number): Promise<ServerProcess> {
  const url = `http://127.0.0.1:${port}`;
  return startCliProcess(['start'], { ...env, PORT: String(port), HOST: '127.0.0.1' }, { ready: { http: `${url}/ready` }, url, killOnFailure: false });
}

