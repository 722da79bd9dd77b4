export { CommandService, CommandRefused, type CommandServiceOptions, type SendOptions, type DesiredValue, type CommandRefusal } from './service.js'
export { CommandLog, type CommandRecord, type CommandStatus, type CommandOrigin } from './command-log.js'
export { CommandRequest, commandProblem } from './validate.js'
