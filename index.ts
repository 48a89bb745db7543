export { gatecast, gatecast as default, requestSerializer, pathSerializer, logSerializers, clientErrorHandler, type GatecastOptions, type ExtraPlugin } from './app.ts'
export { build, start, type BuildOptions } from './server.ts'
export { readConfig, ConfigError, type GatecastConfig, type ConfigOverrides } from './src/config/config.ts'
export { GatecastError } from './src/protocol/errors.ts'
export type {
  Gatecast, ConnectContext, SubscribeContext, PublishContext, CloseContext, ConnectionInfo,
  OnConnectHook, OnSubscribeHook, OnPublishHook, OnCloseHook, UserInfo
} from './src/core/gateway.ts'
export type { VerifiedUser, VerifyCredentials } from './src/auth/users.ts'
export type { Identity } from './src/auth/claims.ts'
export * from './src/protocol/frames.ts'
