/**
 * The server extension's REST API (nbpipe/server/openapi.yaml), through JupyterLab's
 * authenticated `ServerConnection`: the token or the XSRF cookie is handled for us.
 */
import { PageConfig, URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import type { Accepted, Build, BuildSummary, Pipeline, PipelineListing } from './types';

/** An answer with an error status; `body` is the server's JSON error, when it sent one. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly body: { [key: string]: any } = {}
  ) {
    super(message);
  }
}

/** The server did not answer at all (stopped, restarting, network down). */
export class UnreachableError extends Error {}

export class NbpipeApi {
  constructor(readonly settings: ServerConnection.ISettings = ServerConnection.makeSettings()) {}

  listPipelines(): Promise<{ pipelines: PipelineListing[]; truncated: boolean }> {
    return this.request('pipelines');
  }

  getPipeline(path: string, refresh = false): Promise<Pipeline> {
    return this.request(`pipelines/${URLExt.encodeParts(path)}${refresh ? '?refresh=true' : ''}`);
  }

  listBuilds(pipeline: string, limit = 10): Promise<{ builds: BuildSummary[]; total: number }> {
    const query = URLExt.objectToQueryString({ pipeline, limit });
    return this.request(`builds${query}`);
  }

  getBuild(id: string): Promise<Build> {
    return this.request(`builds/${encodeURIComponent(id)}`);
  }

  startBuild(pipeline: string, force: boolean, task?: string): Promise<Accepted> {
    const body: { [key: string]: any } = { pipeline, force };
    if (task) {
      body.tasks = [task];
    }
    return this.request('builds', { method: 'POST', body: JSON.stringify(body) });
  }

  cancelBuild(id: string): Promise<Accepted> {
    return this.request(`builds/${encodeURIComponent(id)}/cancel`, { method: 'POST' });
  }

  /** The URL that serves a file of the server root as it is (an HTML report in a new tab). */
  filesUrl(path: string): string {
    return URLExt.join(PageConfig.getBaseUrl(), 'files', URLExt.encodeParts(path));
  }

  private async request<T>(endpoint: string, init: RequestInit = {}): Promise<T> {
    const url = URLExt.join(this.settings.baseUrl, 'nbpipe/api', endpoint);
    let response: Response;
    try {
      response = await ServerConnection.makeRequest(url, init, this.settings);
    } catch (error) {
      throw new UnreachableError(String((error as Error)?.message ?? error));
    }
    const text = await response.text();
    let data: any = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!response.ok) {
      const message = data?.message ?? (text.slice(0, 200) || response.statusText);
      throw new ApiError(response.status, message, data ?? {});
    }
    return data as T;
  }
}
