/**
 * The commands that build and cancel the pipeline picked in the panel, and their place in the
 * command palette (category "Pipelines").
 */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';

import { PipelineController } from '../controller';
import { pipelineIcon } from '../icons';
import { CommandIDs, IPipelineController } from '../tokens';

export const commandsPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyterlab-nbpipe:commands',
  description: 'Build Pipeline, Force-Build Pipeline and Cancel Pipeline Build commands.',
  autoStart: true,
  requires: [IPipelineController],
  optional: [ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    controller: PipelineController,
    palette: ICommandPalette | null
  ) => {
    const { commands } = app;
    const showPanel = () => commands.execute(CommandIDs.open).catch(() => undefined);

    commands.addCommand(CommandIDs.build, {
      label: args => (args.force ? 'Force-Build Pipeline' : 'Build Pipeline'),
      caption: args =>
        args.force
          ? 'Rebuild every task of the pipeline picked in the Pipelines panel'
          : 'Build the outdated tasks of the pipeline picked in the Pipelines panel',
      icon: args => (args.toolbar ? pipelineIcon : undefined),
      isEnabled: args => !!args.path || !!controller.state.selected,
      execute: async args => {
        void showPanel();
        const path = typeof args.path === 'string' ? args.path : undefined;
        await controller.build({ force: !!args.force, path });
      }
    });

    commands.addCommand(CommandIDs.cancel, {
      label: 'Cancel Pipeline Build',
      caption: 'Stop the build running for the pipeline picked in the Pipelines panel',
      isEnabled: () => !!controller.state.build,
      execute: async () => {
        void showPanel();
        await controller.cancel();
      }
    });

    if (palette) {
      const category = 'Pipelines';
      palette.addItem({ command: CommandIDs.build, category });
      palette.addItem({ command: CommandIDs.build, category, args: { force: true } });
      palette.addItem({ command: CommandIDs.cancel, category });
      palette.addItem({ command: CommandIDs.open, category });
    }
  }
};
