import type { BuiltInDialect } from './dialect.js'

/** A US thermostat: Fahrenheit throughout, ISO-8601 clock, HVAC mode in capitals. */
export const hearthwayT100: BuiltInDialect = {
  brand: 'Hearthway Controls',
  model: {
    name: 'hearthway-t100',
    capabilities: [
      'temperature',
      // 40..90 °F, the dial's range.
      { name: 'targetTemperature', min: 4.4, max: 32.3 },
      'humidity',
      { name: 'mode', enum: ['off', 'heat', 'cool', 'auto'] },
      'battery',
    ],
    mapping: {
      format: 'json',
      timestamp: { path: 'ts', unit: 'iso' },
      readings: [
        { path: 'ambient_f', capability: 'temperature', unit: '°F' },
        { path: 'setpoint_f', capability: 'targetTemperature', unit: '°F' },
        { path: 'rh', capability: 'humidity' },
        { path: 'hvac', capability: 'mode', map: { OFF: 'off', HEAT: 'heat', COOL: 'cool', AUTO: 'auto' } },
        { path: 'batt', capability: 'battery' },
      ],
      commands: {
        id: 'id',
        set: [
          { path: 'setpoint_f', capability: 'targetTemperature', unit: '°F' },
          { path: 'hvac', capability: 'mode', map: { OFF: 'off', HEAT: 'heat', COOL: 'cool', AUTO: 'auto' } },
        ],
        ack: { id: 'id', status: { path: 'ok', ok: [true] }, error: 'reason' },
      },
    },
  },
  samples: [
    {
      payload: '{"ts":"2026-11-18T08:00:00Z","ambient_f":70.7,"setpoint_f":68,"rh":41,"hvac":"HEAT","batt":87}',
      ts: '2026-11-18T08:00:00.000Z',
      readings: { temperature: 21.5, targetTemperature: 20, humidity: 41, mode: 'heat', battery: 87 },
    },
  ],
  commandSample: {
    command: { id: 'cmd-3', set: { targetTemperature: 21.5, mode: 'cool' } },
    payload: '{"id":"cmd-3","setpoint_f":70.7,"hvac":"COOL"}',
    ack: '{"id":"cmd-3","ok":true}',
    decoded: { id: 'cmd-3', status: 'ok' },
  },
}
