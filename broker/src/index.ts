export * from './policy.js'
export * from './broker.js'
