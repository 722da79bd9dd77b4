import type { DeviceBus } from '@trellis/broker'
import type { RouteDef } from './api/route.js'
import type { ApiContext } from './api/context.js'
import { automationRoutes } from './api/routes/automations.js'
import { AutomationStore } from './automations/automation-store.js'
import { Automations, type AutomationsOptions } from './automations/automations.js'
import { commandRoutes, commandView } from './api/routes/commands.js'
import { presenceRoutes } from './api/routes/presence.js'
import { scheduleRoutes } from './api/routes/schedules.js'
import { streamRoutes } from './api/routes/stream.js'
import { CommandLog } from './commands/command-log.js'
import { CommandService, type CommandServiceOptions } from './commands/service.js'
import { PresenceMonitor, type PresenceMonitorOptions } from './presence/presence.js'
import type { SqlClient } from './registry/sql.js'
import { ScheduleStore } from './schedules/schedule-store.js'
import { Scheduler, type SchedulerOptions } from './schedules/scheduler.js'
import { LiveStreams, type LiveStreamsOptions } from './stream/live.js'

/** Settings of the owner-facing side; every field documents its default where it is declared. */
export interface ControlOptions {
  /** Ack waits, late acks, the offline queue and retention; defaults in CommandServiceOptions. */
  commands?: Pick<CommandServiceOptions, 'defaultWaitMs' | 'lateAckWindowMs' | 'defaultQueueTtlMs' | 'maxPendingPerDevice' | 'queueSweepMs' | 'retentionMs'>
  /** Staleness sweep and heartbeat allowances; defaults in PresenceMonitorOptions. */
  presence?: Pick<PresenceMonitorOptions, 'sweepCron' | 'defaultAllowanceMs' | 'allowanceFor' | 'judges'>
  /** Live stream heartbeats and limits; defaults in LiveStreamsOptions. */
  stream?: Pick<LiveStreamsOptions, 'heartbeatMs' | 'maxPerOwner' | 'maxBufferedBytes'>
  /** Schedule limits and run history; defaults in SchedulerOptions. */
  schedules?: Omit<SchedulerOptions, 'store' | 'commands' | 'directory' | 'log'>
  /** Automation limits, chains and run history; defaults in AutomationsOptions. */
  automations?: Omit<AutomationsOptions, 'store' | 'commands' | 'directory' | 'state' | 'log'>
}

/** The hub's parts that control builds on: the API's own, plus SQL and the device bus. */
export interface ControlDeps extends Pick<ApiContext, 'registry' | 'directory' | 'state' | 'store' | 'writer' | 'deadLetters' | 'metrics' | 'log'> {
  sql: SqlClient
  bus: DeviceBus
}

/** The way back from owners to devices: commands, presence, the live stream, schedules and automations. */
export interface Control {
  readonly commands: CommandService
  readonly presence: PresenceMonitor
  readonly streams: LiveStreams
  readonly scheduler: Scheduler
  readonly automations: Automations
  /** The API routes of all five. */
  routes (api: ApiContext): RouteDef<any, any, any, any>[]
  /** Stops schedules and the sweep and ends live streams: before the HTTP server closes. */
  stopAccepting (): void
  /** Stops command timers: after the HTTP server closed. */
  close (): Promise<void>
}

/** Builds the owner-facing services on their own tables in the registry's database. */
export async function buildControl (deps: ControlDeps, opts: ControlOptions = {}): Promise<Control> {
  const { sql, bus, registry, directory, state, store, writer, deadLetters, metrics, log } = deps
  const commands = await CommandService.start({
    ...opts.commands, bus, directory, state, writer, deadLetters, metrics, commandLog: await CommandLog.open(sql), log: log.child({ component: 'commands' }),
  })
  const presence = new PresenceMonitor({ ...opts.presence, state, directory, writer, store, log: log.child({ component: 'presence' }) })
  const streams = new LiveStreams({ ...opts.stream, state, commands, directory, commandView, log: log.child({ component: 'stream' }) })
  // A revoked token stops reading at once, not only at its next request.
  const onTokenRevoked = (tokenId: string) => { streams.closeForToken(tokenId) }
  registry.on('token-revoked', onTokenRevoked)
  // A release or a claim ends what the previous owner queued (the registry emits device-changed for both).
  const onDeviceChanged = (deviceId: string) => {
    commands.ownershipChanged(deviceId).catch((err: Error) => log.error({ err, deviceId }, 'commands could not follow a change of owner'))
    automations.ownershipChanged(deviceId).catch((err: Error) => log.error({ err, deviceId }, 'automations could not follow a change of owner'))
  }
  const scheduler = await Scheduler.start({ ...opts.schedules, store: await ScheduleStore.open(sql), commands, directory, log: log.child({ component: 'schedules' }) })
  const automations = await Automations.start({ ...opts.automations, store: await AutomationStore.open(sql), commands, directory, state, log: log.child({ component: 'automations' }) })
  registry.on('device-changed', onDeviceChanged)
  return {
    commands,
    presence,
    streams,
    scheduler,
    automations,
    routes: (api) => [
      ...automationRoutes(api, automations),
      ...commandRoutes(api, commands),
      ...presenceRoutes(api, presence),
      ...scheduleRoutes(api, scheduler),
      ...streamRoutes(streams),
    ],
    stopAccepting () {
      registry.off('token-revoked', onTokenRevoked)
      registry.off('device-changed', onDeviceChanged)
      scheduler.close()
      automations.close()
      presence.close()
      streams.close()
    },
    async close () {
      await commands.close()
    },
  }
}
