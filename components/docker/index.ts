export * from "./config";
export { DockerPlatform, directoryDigest, type DockerPlatformArgs } from "./DockerPlatform";
