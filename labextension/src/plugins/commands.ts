/**
 * The commands that build and cancel the pipeline picked in the panel, build one task (only it,
 * or up to it: the notebook toolbar, the panel and the graph call `CommandIDs.buildTask`), and
 * their place in the command palette (category "Pipelines").
 */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';

import { PipelineController } from '../controller';
import { isActive } from '../model';
import { pipelineIcon } from '../icons';
import { CommandIDs, IBuildTaskArgs, IPipelineController } from '../tokens';

export const commandsPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyterlab-nbpipe:commands',
  description: 'Build Pipeline, Build This Task / Up to Here (and forced), Cancel Pipeline Build.',
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

    /** `CommandIDs.buildTask`'s arguments, checked (commands take untyped JSON). */
    const taskArgs = (args: ReadonlyPartialJSONObject): IBuildTaskArgs | null => {
      const pipeline =
        typeof args.pipeline === 'string'
          ? args.pipeline
          : (controller.state.selected ?? undefined);
      if (typeof args.task !== 'string' || !args.task || !pipeline) {
        return null;
      }
      return { pipeline, task: args.task, force: !!args.force, upToHere: !!args.upToHere };
    };

    commands.addCommand(CommandIDs.buildTask, {
      label: args =>
        `${args.force ? 'Force-Build' : 'Build'} ${args.upToHere ? 'Up to Here' : 'This Task'}`,
      caption: args => {
        const task = typeof args.task === 'string' ? args.task : 'the task';
        const what = args.upToHere ? `${task} and the tasks it needs` : `only ${task}`;
        return args.force ? `Rebuild ${what}, even if up to date` : `Build ${what} if outdated`;
      },
      isEnabled: args => {
        const target = taskArgs(args);
        const { build, request, selected } = controller.state;
        // One build per pipeline: not while the pipeline shown in the panel builds.
        return (
          target !== null && request === null && !(selected === target.pipeline && isActive(build))
        );
      },
      execute: async args => {
        const target = taskArgs(args);
        if (!target) {
          return;
        }
        void showPanel();
        await controller.build({
          path: target.pipeline,
          task: target.task,
          force: target.force,
          skipUpstream: !target.upToHere
        });
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
