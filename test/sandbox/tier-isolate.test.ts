import { tierSuite } from "./tier-suite.js";

tierSuite("isolate");
