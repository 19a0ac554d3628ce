import { compileProgram } from "../helpers/compile";

export default function setup(): void {
  compileProgram();
}
