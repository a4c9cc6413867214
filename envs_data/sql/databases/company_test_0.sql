BEGIN TRANSACTION;
CREATE TABLE employees (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  department TEXT NOT NULL,
  city TEXT NOT NULL,
  salary INTEGER NOT NULL,
  hire_year INTEGER NOT NULL
);
INSERT INTO employees VALUES(1,'Alma Ibsen','Support','Osaka',70500,2023);
INSERT INTO employees VALUES(2,'Cleo Varga','Engineering','Denver',53500,2011);
INSERT INTO employees VALUES(3,'Carla Walsh','Engineering','Lisbon',108000,2013);
INSERT INTO employees VALUES(4,'Rosa Ueda','Finance','Lisbon',41000,2009);
INSERT INTO employees VALUES(5,'Iris Bishop','Engineering','Lisbon',137500,2007);
INSERT INTO employees VALUES(6,'Hamza Fischer','Legal','Nairobi',117000,2017);
INSERT INTO employees VALUES(7,'Boris Tanaka','Legal','Nairobi',65000,2021);
INSERT INTO employees VALUES(8,'Umar Varga','Engineering','Oslo',144500,2023);
INSERT INTO employees VALUES(9,'Gemma Quintero','Finance','Nairobi',65000,2019);
INSERT INTO employees VALUES(10,'Yara Nakamura','Finance','Lima',112000,2016);
INSERT INTO employees VALUES(11,'Olga Bishop','Sales','Denver',108000,2008);
INSERT INTO employees VALUES(12,'Iris Nakamura','Finance','Nairobi',110500,2015);
INSERT INTO employees VALUES(13,'Jamal Petrov','Engineering','Oslo',32000,2013);
INSERT INTO employees VALUES(14,'Tess Haddad','Sales','Lima',58000,2016);
INSERT INTO employees VALUES(15,'Jamal Quintero','Engineering','Denver',84500,2006);
INSERT INTO employees VALUES(16,'Greta Okafor','Sales','Oslo',139000,2012);
INSERT INTO employees VALUES(17,'Rosa Dalton','Sales','Nairobi',111000,2022);
INSERT INTO employees VALUES(18,'Kira Abbott','Support','Lima',39000,2005);
INSERT INTO employees VALUES(19,'Vera Fischer','Sales','Lima',54000,2023);
INSERT INTO employees VALUES(20,'Greta Walsh','Sales','Osaka',41500,2016);
INSERT INTO employees VALUES(21,'Farid Baker','Sales','Lisbon',107500,2005);
INSERT INTO employees VALUES(22,'Wen Quintero','Engineering','Oslo',121500,2008);
INSERT INTO employees VALUES(23,'Gemma Garza','Finance','Oslo',123000,2006);
INSERT INTO employees VALUES(24,'Greta Arendt','Legal','Lisbon',99500,2018);
INSERT INTO employees VALUES(25,'Yara Eklund','Support','Lisbon',136500,2013);
INSERT INTO employees VALUES(26,'Dario Tanaka','Sales','Oslo',39000,2014);
INSERT INTO employees VALUES(27,'Vera Rahman','Marketing','Osaka',53000,2006);
INSERT INTO employees VALUES(28,'Nils Crane','Support','Osaka',35000,2008);
INSERT INTO employees VALUES(29,'Edith Garza','Legal','Osaka',55500,2013);
INSERT INTO employees VALUES(30,'Joel Rahman','Marketing','Lima',90000,2023);
INSERT INTO employees VALUES(31,'Rosa Xu','Engineering','Lima',116000,2011);
INSERT INTO employees VALUES(32,'Elena Haddad','Sales','Lima',50000,2010);
INSERT INTO employees VALUES(33,'Ada Crane','Marketing','Nairobi',62000,2008);
INSERT INTO employees VALUES(34,'Greta Lindqvist','Support','Osaka',115000,2010);
INSERT INTO employees VALUES(35,'Boris Garza','Sales','Osaka',117000,2018);
INSERT INTO employees VALUES(36,'Ada Castro','Support','Nairobi',147000,2014);
INSERT INTO employees VALUES(37,'Hamza Ueda','Legal','Denver',79500,2013);
INSERT INTO employees VALUES(38,'Wen Walsh','Engineering','Nairobi',118000,2005);
INSERT INTO employees VALUES(39,'Quinn Tanaka','Finance','Lima',40000,2015);
INSERT INTO employees VALUES(40,'Wen Garza','Legal','Lisbon',99500,2013);
INSERT INTO employees VALUES(41,'Elena Ibsen','Engineering','Oslo',127500,2020);
INSERT INTO employees VALUES(42,'Nils Baker','Marketing','Nairobi',66500,2016);
INSERT INTO employees VALUES(43,'Pavel Eklund','Support','Lima',139000,2009);
INSERT INTO employees VALUES(44,'Quinn Ibsen','Legal','Denver',79500,2018);
INSERT INTO employees VALUES(45,'Jamal Varga','Legal','Lisbon',30000,2011);
INSERT INTO employees VALUES(46,'Edith Rahman','Legal','Denver',50000,2012);
INSERT INTO employees VALUES(47,'Greta Garza','Engineering','Lima',87000,2017);
INSERT INTO employees VALUES(48,'Farid Okafor','Legal','Lima',102500,2018);
INSERT INTO employees VALUES(49,'Vera Zeller','Sales','Osaka',141500,2023);
INSERT INTO employees VALUES(50,'Iris Ueda','Finance','Lima',120500,2006);
INSERT INTO employees VALUES(51,'Hamza Moreau','Engineering','Osaka',38000,2013);
INSERT INTO employees VALUES(52,'Hiro Nakamura','Legal','Oslo',87000,2021);
INSERT INTO employees VALUES(53,'Umar Rahman','Finance','Nairobi',107000,2005);
INSERT INTO employees VALUES(54,'Tess Arendt','Sales','Osaka',71500,2014);
INSERT INTO employees VALUES(55,'Ines Petrov','Finance','Lisbon',133500,2018);
INSERT INTO employees VALUES(56,'Wen Varga','Engineering','Nairobi',111000,2007);
INSERT INTO employees VALUES(57,'Nils Arendt','Legal','Oslo',31500,2017);
INSERT INTO employees VALUES(58,'Tess Tanaka','Legal','Osaka',70000,2005);
INSERT INTO employees VALUES(59,'Edith Lindqvist','Engineering','Lisbon',121500,2005);
INSERT INTO employees VALUES(60,'Greta Haddad','Legal','Nairobi',108000,2008);
COMMIT;
