import type { BuiltInDialect } from './dialect.js'

/**
 * A fridge. Frostline firmware counts in tenths of a degree Celsius (an int16
 * on the wire), stamps epoch seconds and spells its door state in capitals.
 */
export const frostlineF2: BuiltInDialect = {
  brand: 'Frostline',
  model: {
    name: 'frostline-f2',
    capabilities: ['temperature', { name: 'targetTemperature', min: 1, max: 8 }, 'contact', 'rssi'],
    mapping: {
      format: 'json',
      timestamp: { path: 't', unit: 's' },
      readings: [
        // temps_x10[0] is the fridge compartment, [1] the freezer, which the model does not expose.
        { path: 'data.temps_x10[0]', capability: 'temperature', unit: 'd°C' },
        { path: 'data.setp_x10', capability: 'targetTemperature', unit: 'd°C' },
        { path: 'data.door', capability: 'contact', map: { OPEN: false, CLOSED: true } },
        { path: 'rssi', capability: 'rssi' },
      ],
      commands: {
        id: 'req',
        set: [{ path: 'cmd.setp_x10', capability: 'targetTemperature', unit: 'd°C' }],
        ack: { id: 'req', status: { path: 'result', ok: ['OK'] }, error: 'msg' },
      },
    },
  },
  samples: [
    {
      payload: '{"t":1795000000,"data":{"temps_x10":[42,-183],"setp_x10":40,"door":"CLOSED","comp":1},"rssi":-67}',
      ts: '2026-11-18T11:06:40.000Z',
      readings: { temperature: 4.2, targetTemperature: 4, contact: true, rssi: -67 },
    },
    {
      payload: '{"t":1795000060,"data":{"temps_x10":[57,-180],"door":"OPEN","comp":0}}',
      ts: '2026-11-18T11:07:40.000Z',
      readings: { temperature: 5.7, contact: false },
    },
  ],
  commandSample: {
    command: { id: 'cmd-1', set: { targetTemperature: 3.5 } },
    payload: '{"req":"cmd-1","cmd":{"setp_x10":35}}',
    ack: '{"req":"cmd-1","result":"FAIL","msg":"setpoint locked by child lock"}',
    decoded: { id: 'cmd-1', status: 'error', error: 'setpoint locked by child lock' },
  },
}
