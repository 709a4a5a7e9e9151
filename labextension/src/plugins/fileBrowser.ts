/**
 * "Build Pipeline" in the file browser's context menu, on `pipeline*.yaml` / `pipeline*.yml`.
 */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { IFileBrowserFactory } from '@jupyterlab/filebrowser';

import { isPipelineFile } from '../files';
import { pipelineIcon } from '../icons';
import { CommandIDs } from '../tokens';

export const fileBrowserPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyterlab-nbpipe:file-browser',
  description: 'Builds a pipeline from its spec file in the file browser.',
  autoStart: true,
  requires: [IFileBrowserFactory],
  activate: (app: JupyterFrontEnd, browsers: IFileBrowserFactory) => {
    const selectedPipelineFile = (): string | null => {
      const browser = browsers.tracker.currentWidget;
      if (!browser) {
        return null;
      }
      const first = browser.selectedItems().next();
      const model = first.done ? null : first.value;
      return model && model.type !== 'directory' && isPipelineFile(model.path) ? model.path : null;
    };

    app.commands.addCommand(CommandIDs.buildFile, {
      label: 'Build Pipeline',
      caption: 'Build this pipeline with nbpipe',
      icon: pipelineIcon,
      isVisible: () => selectedPipelineFile() !== null,
      execute: async () => {
        const path = selectedPipelineFile();
        if (path) {
          await app.commands.execute(CommandIDs.build, { path });
        }
      }
    });

    app.contextMenu.addItem({
      command: CommandIDs.buildFile,
      selector: '.jp-DirListing-item[data-isdir="false"]',
      rank: 3
    });
  }
};
