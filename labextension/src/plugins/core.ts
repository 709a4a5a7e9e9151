/**
 * The core plugin: one controller for the page, talking to the server extension's REST API and
 * listening to the event bus. Its settings (`schema/plugin.json`) are under this plugin's id.
 */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ISettingRegistry } from '@jupyterlab/settingregistry';

import { NbpipeApi } from '../api';
import { PipelineController } from '../controller';
import { IPipelineController } from '../tokens';

const PLUGIN_ID = 'jupyterlab-nbpipe:plugin';

export const corePlugin: JupyterFrontEndPlugin<PipelineController> = {
  id: PLUGIN_ID,
  description: 'Builds nbpipe pipelines and follows them live (REST API and event bus).',
  autoStart: true,
  provides: IPipelineController,
  optional: [ISettingRegistry],
  activate: (app: JupyterFrontEnd, settings: ISettingRegistry | null) => {
    const { serviceManager } = app;
    const api = new NbpipeApi(serviceManager.serverSettings);
    const controller = new PipelineController({ api, events: serviceManager.events });
    settings
      ?.load(PLUGIN_ID)
      .then(loaded => {
        const apply = () => {
          controller.historySize = (loaded.get('historySize').composite as number) ?? 10;
        };
        apply();
        loaded.changed.connect(apply);
      })
      .catch(reason => console.warn('nbpipe: could not load the settings', reason));
    void app.restored.then(() => controller.refresh());
    return controller;
  }
};
