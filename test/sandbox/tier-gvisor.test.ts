import { tierSuite } from "./tier-suite.js";

tierSuite("gvisor");
