import type { BuiltInDialect } from './dialect.js'

/**
 * An air purifier speaking a MIoT-like property protocol: every value is an
 * item of a list, identified by service id (siid) and property id (piid).
 */
export const breezewellAp3: BuiltInDialect = {
  brand: 'Breezewell',
  model: {
    name: 'breezewell-ap3',
    capabilities: ['power', 'pm25', 'humidity', 'fanSpeed', { name: 'mode', enum: ['auto', 'sleep', 'manual'] }],
    mapping: {
      format: 'properties',
      properties: { list: 'params', keys: ['siid', 'piid'], value: 'value' },
      readings: [
        { match: { siid: 2, piid: 1 }, capability: 'power' },
        // The fan level is a share of full speed, 0..1.
        { match: { siid: 2, piid: 4 }, capability: 'fanSpeed', unit: 'ratio' },
        { match: { siid: 2, piid: 5 }, capability: 'mode', map: { 0: 'auto', 1: 'sleep', 2: 'manual' } },
        { match: { siid: 3, piid: 4 }, capability: 'pm25' },
        { match: { siid: 3, piid: 7 }, capability: 'humidity' },
      ],
      commands: {
        id: 'id',
        fields: { method: 'set_properties' },
        set: [
          { match: { siid: 2, piid: 1 }, capability: 'power' },
          { match: { siid: 2, piid: 4 }, capability: 'fanSpeed', unit: 'ratio' },
          { match: { siid: 2, piid: 5 }, capability: 'mode', map: { 0: 'auto', 1: 'sleep', 2: 'manual' } },
        ],
        ack: { id: 'id', status: { path: 'result[0].code', ok: [0] } },
      },
    },
  },
  samples: [
    {
      payload: '{"id":4711,"method":"properties_changed","params":[{"siid":2,"piid":1,"value":true},{"siid":2,"piid":4,"value":0.6},{"siid":2,"piid":5,"value":0},{"siid":3,"piid":4,"value":35},{"siid":3,"piid":7,"value":48},{"siid":9,"piid":1,"value":"filter-ok"}]}',
      readings: { power: true, fanSpeed: 60, mode: 'auto', pm25: 35, humidity: 48 },
    },
  ],
  commandSample: {
    command: { id: 'cmd-2', set: { power: false, mode: 'sleep' } },
    payload: '{"id":"cmd-2","method":"set_properties","params":[{"siid":2,"piid":1,"value":false},{"siid":2,"piid":5,"value":1}]}',
    ack: '{"id":"cmd-2","result":[{"siid":2,"piid":1,"code":0},{"siid":2,"piid":5,"code":0}]}',
    decoded: { id: 'cmd-2', status: 'ok' },
  },
}
