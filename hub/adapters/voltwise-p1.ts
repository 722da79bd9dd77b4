import type { BuiltInDialect } from './dialect.js'

/**
 * A metering smart plug on a small microcontroller: it prints `key=value`
 * pairs rather than JSON, energy in watt-hours, the relay as ON/OFF.
 */
export const voltwiseP1: BuiltInDialect = {
  brand: 'Voltwise',
  model: {
    name: 'voltwise-p1',
    capabilities: ['power', 'voltage', 'current', 'powerDraw', 'energy', 'rssi'],
    mapping: {
      format: 'keyvalue',
      keyValue: { separator: ';', assign: '=' },
      timestamp: { path: 'TS', unit: 'ms' },
      readings: [
        { path: 'RELAY', capability: 'power', map: { ON: true, OFF: false } },
        { path: 'V', capability: 'voltage' },
        { path: 'A', capability: 'current' },
        { path: 'W', capability: 'powerDraw' },
        { path: 'Wh', capability: 'energy', unit: 'Wh' },
        { path: 'RSSI', capability: 'rssi' },
      ],
      commands: {
        id: 'ID',
        set: [{ path: 'RELAY', capability: 'power', map: { ON: true, OFF: false } }],
        // The plug echoes its relay in the ack, so the new state is known without waiting for telemetry.
        ack: { id: 'ID', status: { path: 'RESULT', ok: ['OK'] }, error: 'ERR', state: true },
      },
    },
  },
  samples: [
    {
      payload: 'TS=1795000123456;V=230.1;A=1.204;W=276.9;Wh=15230.5;RELAY=ON;RSSI=-61',
      ts: '2026-11-18T11:08:43.456Z',
      readings: { power: true, voltage: 230.1, current: 1.204, powerDraw: 276.9, energy: 15.2305, rssi: -61 },
    },
  ],
  commandSample: {
    command: { id: 'cmd-4', set: { power: false } },
    payload: 'ID=cmd-4;RELAY=OFF',
    ack: 'ID=cmd-4;RESULT=OK;RELAY=OFF',
    decoded: { id: 'cmd-4', status: 'ok', state: { power: false } },
  },
}
