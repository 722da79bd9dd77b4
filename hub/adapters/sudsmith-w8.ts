import type { BuiltInDialect } from './dialect.js'

/**
 * A washing machine with a nested status document: programme phases in its
 * own vocabulary, the remaining time as clock text, the door lock as 1/0.
 */
export const sudsmithW8: BuiltInDialect = {
  brand: 'Sudsmith',
  model: {
    name: 'sudsmith-w8',
    capabilities: ['power', 'cyclePhase', 'remainingTime', 'lock', 'firmwareVersion', 'rssi'],
    mapping: {
      format: 'json',
      timestamp: { path: 'time', unit: 'ms' },
      readings: [
        { path: 'status.power', capability: 'power', map: { ON: true, OFF: false } },
        {
          path: 'status.phase',
          capability: 'cyclePhase',
          map: { STANDBY: 'idle', FILL: 'fill', MAIN_WASH: 'wash', RINSE: 'rinse', SPIN: 'spin', DRYING: 'dry', FINISHED: 'done', PAUSED: 'paused', FAULT: 'error' },
        },
        { path: 'status.remaining', capability: 'remainingTime', unit: 'hh:mm:ss' },
        { path: 'status.door_lock', capability: 'lock', map: { 1: true, 0: false } },
        { path: 'device.fw', capability: 'firmwareVersion' },
        { path: 'device.wifi.rssi', capability: 'rssi' },
      ],
      commands: {
        id: 'cid',
        set: [{ path: 'cmd.power', capability: 'power', map: { ON: true, OFF: false } }],
        actions: {
          // A cold start or a resume after a pause; `programme` picks the wash (cotton, eco, quick).
          start: { fields: { 'cmd.op': 'START' }, params: { programme: 'cmd.prog' } },
          pause: { fields: { 'cmd.op': 'PAUSE' } },
        },
        ack: { id: 'cid', status: { path: 'code', ok: [0] }, error: 'text' },
      },
    },
  },
  samples: [
    {
      payload: '{"time":1795000123456,"device":{"fw":"3.1.4","wifi":{"rssi":-58}},"status":{"power":"ON","phase":"MAIN_WASH","remaining":"01:12:30","door_lock":1}}',
      ts: '2026-11-18T11:08:43.456Z',
      readings: { power: true, cyclePhase: 'wash', remainingTime: 4350, lock: true, firmwareVersion: '3.1.4', rssi: -58 },
    },
  ],
  commandSample: {
    command: { id: 'cmd-5', set: { power: false } },
    payload: '{"cid":"cmd-5","cmd":{"power":"OFF"}}',
    ack: '{"cid":"cmd-5","code":0}',
    decoded: { id: 'cmd-5', status: 'ok' },
  },
}
