BEGIN TRANSACTION;
CREATE TABLE employees (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  department TEXT NOT NULL,
  city TEXT NOT NULL,
  salary INTEGER NOT NULL,
  hire_year INTEGER NOT NULL
);
INSERT INTO employees VALUES(1,'Umar Varga','Engineering','Lima',136500,2013);
INSERT INTO employees VALUES(2,'Dario Yilmaz','Marketing','Lima',142500,2017);
INSERT INTO employees VALUES(3,'Rosa Okafor','Marketing','Oslo',149500,2012);
INSERT INTO employees VALUES(4,'Farid Walsh','Legal','Oslo',82500,2009);
INSERT INTO employees VALUES(5,'Iris Zeller','Finance','Denver',126000,2011);
INSERT INTO employees VALUES(6,'Carla Garza','Engineering','Lisbon',70500,2015);
INSERT INTO employees VALUES(7,'Bruno Ibsen','Legal','Nairobi',141500,2006);
INSERT INTO employees VALUES(8,'Ines Zeller','Marketing','Oslo',135500,2020);
INSERT INTO employees VALUES(9,'Pavel Crane','Engineering','Lima',35500,2010);
INSERT INTO employees VALUES(10,'Dario Abbott','Support','Oslo',77000,2019);
INSERT INTO employees VALUES(11,'Ines Crane','Finance','Oslo',97500,2009);
INSERT INTO employees VALUES(12,'Ximena Duarte','Engineering','Lima',91500,2021);
INSERT INTO employees VALUES(13,'Farid Garza','Support','Oslo',121000,2005);
INSERT INTO employees VALUES(14,'Olga Dalton','Support','Lisbon',81500,2009);
INSERT INTO employees VALUES(15,'Pavel Silva','Sales','Oslo',116500,2023);
INSERT INTO employees VALUES(16,'Gemma Ibsen','Finance','Oslo',91000,2005);
INSERT INTO employees VALUES(17,'Greta Garza','Finance','Nairobi',99000,2008);
INSERT INTO employees VALUES(18,'Joel Ueda','Marketing','Osaka',36000,2015);
INSERT INTO employees VALUES(19,'Pavel Garza','Finance','Lisbon',92000,2009);
INSERT INTO employees VALUES(20,'Iris Varga','Legal','Oslo',118500,2016);
INSERT INTO employees VALUES(21,'Fynn Silva','Finance','Denver',114000,2006);
INSERT INTO employees VALUES(22,'Kira Xu','Sales','Oslo',105000,2005);
INSERT INTO employees VALUES(23,'Fynn Haddad','Sales','Osaka',128500,2013);
INSERT INTO employees VALUES(24,'Zane Rahman','Engineering','Lisbon',73000,2012);
INSERT INTO employees VALUES(25,'Rosa Baker','Marketing','Osaka',101000,2017);
INSERT INTO employees VALUES(26,'Jamal Petrov','Support','Oslo',59500,2017);
INSERT INTO employees VALUES(27,'Hiro Varga','Sales','Osaka',92000,2005);
INSERT INTO employees VALUES(28,'Umar Zeller','Finance','Oslo',30000,2011);
INSERT INTO employees VALUES(29,'Hamza Fischer','Engineering','Denver',107500,2021);
INSERT INTO employees VALUES(30,'Iris Moreau','Engineering','Lisbon',92000,2017);
INSERT INTO employees VALUES(31,'Elena Abbott','Finance','Oslo',33500,2006);
INSERT INTO employees VALUES(32,'Boris Petrov','Sales','Lisbon',93000,2008);
INSERT INTO employees VALUES(33,'Olga Zeller','Sales','Oslo',80000,2015);
INSERT INTO employees VALUES(34,'Dario Okafor','Marketing','Lisbon',126000,2021);
INSERT INTO employees VALUES(35,'Edith Crane','Support','Lima',90500,2021);
INSERT INTO employees VALUES(36,'Ines Rahman','Support','Lima',132500,2015);
INSERT INTO employees VALUES(37,'Alma Kaplan','Legal','Lisbon',114000,2015);
INSERT INTO employees VALUES(38,'Carla Ueda','Marketing','Lisbon',64500,2006);
INSERT INTO employees VALUES(39,'Ada Garza','Legal','Lisbon',81500,2016);
INSERT INTO employees VALUES(40,'Iris Lindqvist','Sales','Osaka',102000,2016);
INSERT INTO employees VALUES(41,'Quinn Arendt','Engineering','Oslo',128000,2010);
INSERT INTO employees VALUES(42,'Yara Duarte','Support','Nairobi',108500,2010);
INSERT INTO employees VALUES(43,'Carla Dalton','Marketing','Lima',86000,2019);
INSERT INTO employees VALUES(44,'Ines Duarte','Engineering','Oslo',64500,2010);
INSERT INTO employees VALUES(45,'Greta Castro','Legal','Lisbon',114500,2012);
INSERT INTO employees VALUES(46,'Joel Yilmaz','Engineering','Lisbon',64500,2019);
INSERT INTO employees VALUES(47,'Hiro Garza','Finance','Denver',113000,2005);
INSERT INTO employees VALUES(48,'Pavel Baker','Engineering','Oslo',74500,2012);
INSERT INTO employees VALUES(49,'Luis Haddad','Sales','Lisbon',62500,2010);
INSERT INTO employees VALUES(50,'Alma Petrov','Support','Lisbon',86000,2013);
INSERT INTO employees VALUES(51,'Zane Lindqvist','Marketing','Nairobi',43500,2017);
INSERT INTO employees VALUES(52,'Elena Arendt','Marketing','Denver',81000,2015);
INSERT INTO employees VALUES(53,'Boris Bishop','Finance','Denver',137000,2015);
INSERT INTO employees VALUES(54,'Nils Rahman','Engineering','Nairobi',146000,2014);
INSERT INTO employees VALUES(55,'Jamal Yilmaz','Legal','Lima',92500,2011);
INSERT INTO employees VALUES(56,'Pavel Arendt','Sales','Lisbon',65500,2016);
INSERT INTO employees VALUES(57,'Gemma Dalton','Engineering','Nairobi',125500,2023);
INSERT INTO employees VALUES(58,'Cleo Abbott','Finance','Denver',146500,2017);
INSERT INTO employees VALUES(59,'Umar Moreau','Engineering','Lisbon',130500,2009);
INSERT INTO employees VALUES(60,'Yara Castro','Support','Denver',52000,2017);
COMMIT;
