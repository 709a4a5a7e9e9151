/**
 * The server extension's REST API (nbpipe/server/openapi.yaml), through JupyterLab's
 * authenticated `ServerConnection`: the token or the XSRF cookie is handled for us.
 */
import { PageConfig, URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import type { Accepted, Build, BuildSummary, Pipeline, PipelineListing, Product } from './types';

/** A task a file belongs to, as `GET tasks-of?path=` sends it. */
export interface FileTask {
  pipeline: string;
  task: string;
  /** The file is the task's source, or one of its products. */
  role: 'source' | 'product';
  kind: string;
  /** The grid entry the task is one combination of (null outside a grid). */
  grid: string | null;
  source: string | null;
  products: Product[];
  /** Upstream products by task name: absolute paths, as a build injects them. */
  upstream: { [task: string]: any };
  params: { [name: string]: any };
  language: string | null;
  /** The injected-parameters cell a build adds (absolute paths), to run in the kernel. */
  injected_code: string | null;
  /** Why the code could not be rendered, if it could not. */
  injected_error: string | null;
}

export interface TasksOfFile {
  path: string;
  tasks: FileTask[];
  /** Candidate pipelines that could not be loaded (a spec error), with where to fix it. */
  errors: { pipeline: string; message: string }[];
}

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

  /**
   * Starts a build: every outdated task, or `task` and what it needs, or with `skipUpstream`
   * only `task` (`nbpipe build --partially TASK --skip-upstream`).
   */
  startBuild(
    pipeline: string,
    force: boolean,
    task?: string,
    skipUpstream = false
  ): Promise<Accepted> {
    const body: { [key: string]: any } = { pipeline, force };
    if (task) {
      body.tasks = [task];
      if (skipUpstream) {
        body.skip_upstream = true;
      }
    }
    return this.request('builds', { method: 'POST', body: JSON.stringify(body) });
  }

  /** The tasks whose source or product is the file at `path` (relative to the server root). */
  tasksOf(path: string): Promise<TasksOfFile> {
    return this.request(`tasks-of${URLExt.objectToQueryString({ path })}`);
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
